package commands

import (
	"math"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultCacheBytes bounds the aggregates an instance keeps in memory, per kind
// (workspaces, organizations), unless configured otherwise.
const DefaultCacheBytes = 256 << 20

// An aggregate is counted for entryBytes (the entry, the empty aggregate's maps,
// the cache's own node: about 800 bytes for a workspace with one event, measured in
// make bench) plus its last snapshot's size plus eventBytes per event applied since
// (a key creation, sealed secret included, is about that much in memory).
const (
	entryBytes = 512
	eventBytes = 512
)

// cache holds the aggregates an instance has loaded, most recently used first;
// once their estimated size passes the budget, the least recently used go. An
// aggregate dropped while a command still uses it finishes that command; the next
// one loads it again (from its snapshot), and two copies at once are safe: the log's
// expected-version check lets one write and makes the other retry. Guarded by its
// repository's mutex.
type cache[A aggregate] struct {
	lru    *simplelru.LRU[string, *entry[A]]
	bytes  int64
	budget int64
	stats  CacheStats
}

// CacheStats counts one kind of aggregate's cache use; read them with Load.
type CacheStats struct {
	Hits, Misses, Evictions atomic.Uint64
	Bytes, Entries          atomic.Int64
}

func newCache[A aggregate](budget int64) *cache[A] {
	c := &cache[A]{budget: budget}
	// The count bound is not the one that matters: the budget in bytes is.
	c.lru, _ = simplelru.NewLRU[string, *entry[A]](math.MaxInt, func(_ string, e *entry[A]) { c.bytes -= e.bytes })
	return c
}

// get returns the entry of an aggregate, created empty on a miss.
func (c *cache[A]) get(id string, empty func() *entry[A]) *entry[A] {
	if e, ok := c.lru.Get(id); ok {
		c.stats.Hits.Add(1)
		return e
	}
	c.stats.Misses.Add(1)
	e := empty()
	c.lru.Add(id, e)
	c.publish()
	return e
}

// drop removes an entry (an aggregate that does not exist) without counting an
// eviction.
func (c *cache[A]) drop(id string, e *entry[A]) {
	if cur, ok := c.lru.Peek(id); ok && cur == e {
		c.lru.Remove(id)
		c.publish()
	}
}

// resize sets an entry's estimated size (its last snapshot's, plus the events
// applied since) and evicts the least recently used others while over budget.
func (c *cache[A]) resize(id string, e *entry[A]) {
	if cur, ok := c.lru.Peek(id); !ok || cur != e {
		return // evicted meanwhile: no longer counted
	}
	c.lru.Get(id) // just used: the most recent
	size := entryBytes + int64(e.snapshotSize) + eventBytes*int64(e.unsnapshotted)
	c.bytes += size - e.bytes
	e.bytes = size
	for c.bytes > c.budget && c.lru.Len() > 1 { // never the entry in use: the most recent
		c.lru.RemoveOldest()
		c.stats.Evictions.Add(1)
	}
	c.publish()
}

func (c *cache[A]) publish() {
	c.stats.Bytes.Store(c.bytes)
	c.stats.Entries.Store(int64(c.lru.Len()))
}
