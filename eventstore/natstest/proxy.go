package natstest

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Proxy stands between clients and a server and can swallow, without an answer, the
// client messages published to chosen subjects: the server seems to stall on exactly
// those requests (a direct get, a consumer creation) while everything else flows.
// It speaks just enough of the NATS client protocol to find PUB and HPUB frames.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	stall func(subject string) bool
}

// StartProxy listens on a random port in front of the server; closed by t.Cleanup.
func (s *Server) StartProxy(t testing.TB) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: strings.TrimPrefix(s.ClientURL(), "nats://")}
	go p.accept()
	t.Cleanup(func() { _ = ln.Close() })
	return p
}

// Connect opens a client connection through the proxy, closed at the end of the test.
func (p *Proxy) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("nats://"+p.ln.Addr().String(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("natstest proxy connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Stall swallows from now on the messages whose subject matches; nil lets all pass.
func (p *Proxy) Stall(match func(subject string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stall = match
}

func (p *Proxy) stalls(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stall != nil && p.stall(subject)
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
		go func() { p.forward(c, s); _ = s.Close() }()
	}
}

// forward copies the client's protocol to the server frame by frame, dropping the
// PUB/HPUB frames to stalled subjects.
func (p *Proxy) forward(client io.Reader, server io.Writer) {
	r := bufio.NewReader(client)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		var payload []byte
		if len(f) >= 3 && (strings.EqualFold(f[0], "PUB") || strings.EqualFold(f[0], "HPUB")) {
			size, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return
			}
			payload = make([]byte, size+2) // and its CRLF
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			if p.stalls(f[1]) {
				continue
			}
		}
		if _, err := io.WriteString(server, line); err != nil {
			return
		}
		if _, err := server.Write(payload); err != nil {
			return
		}
	}
}
