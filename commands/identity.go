package commands

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"
)

// identity names what one request creates and the events it appends. Without an
// Idempotency-Key every name is fresh; with one, names derive from the key's owner,
// the key and when it was first claimed, so every attempt of the same request names
// the same resources and the same events: a retry can find in the log what an
// attempt whose outcome it never learnt did, and the log drops a second copy.
type identity struct {
	seed [32]byte
	at   time.Time
	set  bool
}

func newIdentity(scope, key string, claimed time.Time) identity {
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(claimed.UnixMicro(), 10)))
	var id identity
	copy(id.seed[:], h.Sum(nil))
	id.at, id.set = claimed, true
	return id
}

// ulid is the i-th name of a kind ("key", "event", …): fresh, or derived.
func (id identity) ulid(kind string, i int) ulid.ULID {
	if !id.set {
		return ulid.Make()
	}
	h := sha256.New()
	h.Write(id.seed[:])
	h.Write([]byte(kind))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(i)))
	var u ulid.ULID
	_ = u.SetTime(ulid.Timestamp(id.at))
	_ = u.SetEntropy(h.Sum(nil)[:10])
	return u
}

// eventIDs names the events of an append; nil lets the event store name them.
func (id identity) eventIDs() func(int) string {
	if !id.set {
		return nil
	}
	return func(i int) string { return id.ulid("event", i).String() }
}
