package eventstore

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Ensure runs a creation of a stream, a bucket or an object store that another
// instance may be running at the same moment. On a cluster, one of two concurrent
// creations can stall while the new stream elects its leader, and a cluster still
// forming has no peers to place replicas on yet; each attempt is bounded, and such
// an attempt is tried again until ctx ends (a deployment's instances and its NATS
// nodes start together).
func Ensure[T any](ctx context.Context, create func(context.Context) (T, error)) (T, error) {
	const attempt = 2 * time.Second
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		v, err := create(actx)
		var api *jetstream.APIError
		stalled := err != nil && ctx.Err() == nil &&
			(actx.Err() != nil || errors.As(err, &api) && api.ErrorCode == errNoPeers)
		cancel()
		if !stalled {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// errNoPeers is the server's "no suitable peers for placement" (JSClusterNoPeersErrF).
const errNoPeers jetstream.ErrorCode = 10005
