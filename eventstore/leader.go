package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errNoMessage: the stream holds no message on the subject.
var errNoMessage = errors.New("no message on the subject")

// leaderMsg is a stored message as the stream's leader returns it.
type leaderMsg struct {
	Sequence uint64
	Header   nats.Header
	Data     []byte
}

// lastFromLeader reads the last message of subject from the stream's leader
// ($JS.API.STREAM.MSG.GET). A direct get, which a stream allowing them answers from
// any replica, may come from one that lags: a question whose answer must be
// current (has the aggregate moved? is this data key there?) asks the leader. A
// context without a deadline is bounded by the client's JetStream timeout, as the
// library's own reads are: a stream without a leader does not answer.
func lastFromLeader(ctx context.Context, js jetstream.JetStream, stream, subject string) (leaderMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, js.Options().DefaultTimeout)
		defer cancel()
	}
	req, _ := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	m, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return leaderMsg{}, err
	}
	var resp struct {
		Message *struct {
			Seq    uint64 `json:"seq"`
			Header []byte `json:"hdrs"`
			Data   []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return leaderMsg{}, fmt.Errorf("message get of %s: %w", subject, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound):
		return leaderMsg{}, errNoMessage
	case resp.Error != nil:
		return leaderMsg{}, fmt.Errorf("message get of %s: %s (%d)", subject, resp.Error.Description, resp.Error.ErrCode)
	case resp.Message == nil:
		return leaderMsg{}, fmt.Errorf("message get of %s: an empty answer", subject)
	}
	out := leaderMsg{Sequence: resp.Message.Seq, Data: resp.Message.Data}
	if len(resp.Message.Header) > 0 {
		if out.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return leaderMsg{}, fmt.Errorf("message get of %s: headers: %w", subject, err)
		}
	}
	return out, nil
}
