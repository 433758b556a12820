package eventstore

import (
	"errors"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrEmbeddedNotReady: the embedded server did not accept connections in time.
var ErrEmbeddedNotReady = errors.New("embedded nats-server not ready in time")

// RunEmbedded starts an in-process nats-server with JetStream, listening on
// 127.0.0.1:port (-1: a random port) and storing under dir, and waits until it
// accepts connections: the NATS of `keyledger dev`, and of the tests through
// natstest.
func RunEmbedded(dir string, port int) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		return nil, err
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, ErrEmbeddedNotReady
	}
	return s, nil
}
