package credindex

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/keyledger/keyledger/domain"
)

// The API keys, most of a snapshot, are written after its head in a flat encoding,
// cut in chunks that are decoded in parallel while the next ones are read. A record:
// the secret's HMAC (32 bytes); the key id (uvarint length, bytes); its workspace,
// organization and product (uvarint places in the head's Strings); its allowlist
// (uvarint place in Allowlists); a flags byte (1: deleted); the QPS limit (uvarint,
// 0: none); created and deleted (varint Unix nanoseconds, 0: alive). A chunk is its
// length in bytes (uvarint) and its records.

// keysPerChunk is how many keys a chunk holds.
const keysPerChunk = 32768

// maxChunkBytes bounds one chunk's length as read: a key takes far less than 4 KiB.
const maxChunkBytes = keysPerChunk << 12

const flagDeleted = 1

// maxSnapshotKeys bounds the keys a snapshot's head may announce, before anything is
// allocated for them.
const maxSnapshotKeys = 1 << 28

// keysHead describes the keys that follow the head.
type keysHead struct {
	Count, PerChunk int
	Strings         []string   // workspace and organization ids, products
	Allowlists      [][]string // the keys' shared allowlists, in the index's order
}

// prepareKeys sorts the copy's keys by id, fills the head's tables and returns the
// chunks to write after it.
func (s *indexSnapshot) prepareKeys() [][]byte {
	slices.SortFunc(s.keys, func(a, b *keyEntry) int { return cmp.Compare(a.id, b.id) })
	h := keysHead{Count: len(s.keys), PerChunk: keysPerChunk}
	for _, a := range s.allows {
		h.Allowlists = append(h.Allowlists, a.entries)
	}
	places := map[string]uint64{}
	place := func(v string) uint64 {
		n, ok := places[v]
		if !ok {
			n = uint64(len(h.Strings))
			places[v] = n
			h.Strings = append(h.Strings, v)
		}
		return n
	}
	var chunks [][]byte
	for keys := range slices.Chunk(s.keys, keysPerChunk) {
		b := make([]byte, 0, 96*len(keys))
		for _, k := range keys {
			b = append(b, k.hash[:]...)
			b = binary.AppendUvarint(b, uint64(len(k.id)))
			b = append(b, k.id...)
			b = binary.AppendUvarint(b, place(k.workspaceID))
			b = binary.AppendUvarint(b, place(k.orgID))
			b = binary.AppendUvarint(b, place(string(k.product.businessType())))
			b = binary.AppendUvarint(b, uint64(k.allow.n))
			var flags byte
			if k.deleted {
				flags |= flagDeleted
			}
			b = append(b, flags)
			var qps uint64
			if k.limiter != nil {
				qps = uint64(k.limiter.Limit())
			}
			b = binary.AppendUvarint(b, qps)
			b = binary.AppendVarint(b, k.createdAt)
			b = binary.AppendVarint(b, k.deletedAt)
		}
		chunks = append(chunks, b)
	}
	s.Keys = h
	return chunks
}

func writeChunk(w *bufio.Writer, chunk []byte) error {
	if _, err := w.Write(binary.AppendUvarint(nil, uint64(len(chunk)))); err != nil {
		return err
	}
	_, err := w.Write(chunk)
	return err
}

// restoredKeys are the keys of a snapshot, ready to be put in the index's maps.
type restoredKeys struct {
	entries []keyEntry
	allows  []*allowed
}

// decode reads the chunks that follow the head and decodes them in parallel.
func (h keysHead) decode(r *bufio.Reader) (restoredKeys, error) {
	if h.Count < 0 || h.Count > maxSnapshotKeys || h.PerChunk <= 0 || h.PerChunk > keysPerChunk {
		return restoredKeys{}, errors.New("keys: bad head")
	}
	out := restoredKeys{entries: make([]keyEntry, h.Count), allows: make([]*allowed, len(h.Allowlists))}
	for i, entries := range h.Allowlists {
		out.allows[i] = &allowed{list: allowlistOf(entries), entries: entries, n: i}
	}
	uses := make([]keyUse, h.Count)
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for start := 0; start < h.Count; start += h.PerChunk {
		var chunk []byte
		n, err := binary.ReadUvarint(r)
		if err == nil && n > maxChunkBytes {
			err = fmt.Errorf("a chunk of %d bytes", n)
		}
		if err == nil {
			chunk = make([]byte, n)
			_, err = io.ReadFull(r, chunk)
		}
		if err != nil {
			_ = g.Wait()
			return restoredKeys{}, fmt.Errorf("keys: %w", err)
		}
		end := min(start+h.PerChunk, h.Count)
		g.Go(func() error { return h.decodeChunk(chunk, out.entries[start:end], uses[start:end], out.allows) })
	}
	return out, g.Wait()
}

// decodeChunk decodes one chunk's records into entries (and their uses). The key
// ids of a chunk share one string.
func (h keysHead) decodeChunk(b []byte, entries []keyEntry, uses []keyUse, allows []*allowed) error {
	bad := errors.New("keys: a chunk does not decode")
	var err error
	uvarint := func(limit int) int {
		v, n := binary.Uvarint(b)
		if n <= 0 || v >= uint64(limit) {
			err = bad
			return 0
		}
		b = b[n:]
		return int(v)
	}
	varint := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			err = bad
			return 0
		}
		b = b[n:]
		return v
	}
	str := func() string {
		if i := uvarint(len(h.Strings)); err == nil {
			return h.Strings[i]
		}
		return ""
	}
	ids := make([]byte, 0, 32*len(entries))
	idEnds := make([]int, len(entries))
	for i := range entries {
		if len(b) < 32 {
			return bad
		}
		e := &entries[i]
		copy(e.hash[:], b)
		b = b[32:]
		idLen := uvarint(len(b) + 1)
		if err != nil || idLen > len(b) {
			return bad
		}
		ids, b = append(ids, b[:idLen]...), b[idLen:]
		idEnds[i] = len(ids)
		e.workspaceID, e.orgID, e.product = str(), str(), productOf(domain.BusinessType(str()))
		if a := uvarint(len(allows)); err == nil {
			e.allow = allows[a]
		}
		if err != nil || len(b) == 0 {
			return bad
		}
		e.deleted, b = b[0]&flagDeleted != 0, b[1:]
		if qps := domain.QPS(uvarint(domain.MaxQPS + 1)); qps > 0 {
			e.limiter = rate.NewLimiter(rate.Limit(qps), burst(qps))
		}
		e.createdAt, e.deletedAt = varint(), varint()
		if err != nil {
			return err
		}
		e.use = &uses[i]
	}
	if len(b) != 0 {
		return bad
	}
	all, start := string(ids), 0
	for i := range entries {
		entries[i].id, start = all[start:idEnds[i]], idEnds[i]
	}
	return nil
}
