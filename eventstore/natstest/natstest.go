// Package natstest starts an in-process nats-server with JetStream on a random port,
// in the habit of net/http/httptest.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/eventstore"
)

// Server is a running in-process NATS server.
type Server struct {
	*server.Server
	dir string
}

// Start runs a server whose JetStream data lives in a temporary directory removed at
// the end of the test; it is shut down by t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	s, err := Run(dir, -1)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	srv := &Server{Server: s, dir: dir}
	t.Cleanup(func() { srv.Shutdown() }) // the server of the moment, after any Restart
	return srv
}

// Restart stops the server and starts a new one on the same data directory and port,
// as a crash and recovery would.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	p := s.ClientURL()
	s.Shutdown()
	s.WaitForShutdown()
	ns, err := Run(s.dir, portOf(p))
	if err != nil {
		t.Fatalf("natstest restart: %v", err)
	}
	s.Server = ns
}

// Connect opens a client connection closed at the end of the test.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatalf("natstest connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Run is eventstore.RunEmbedded, for the tests.
func Run(dir string, port int) (*server.Server, error) { return eventstore.RunEmbedded(dir, port) }
