package eventstore

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
)

// lastFromLeader reads the last message of subject from the stream's leader:
// nats.go's JetStreamContext.GetLastMsg without the DirectGet option sends
// $JS.API.STREAM.MSG.GET. A direct get, which a stream allowing them answers from
// any replica, may come from one that lags: a question whose answer must be
// current (has the aggregate moved? is this data key there?) asks the leader. A
// context without a deadline is bounded by the client's JetStream timeout: a
// stream without a leader does not answer. No message: nats.ErrMsgNotFound.
func lastFromLeader(ctx context.Context, js nats.JetStreamContext, stream, subject string) (*nats.RawStreamMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, leaderWait)
		defer cancel()
	}
	return js.GetLastMsg(stream, subject, nats.Context(ctx))
}

// leaderWait bounds a read of the leader whose caller set no deadline: the
// JetStream client's own default.
const leaderWait = 5 * time.Second
