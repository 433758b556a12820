package natstest

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Proxy stands between clients and a server and can swallow, without an answer, the
// client messages published to chosen subjects (the server seems to stall on exactly
// those requests: a direct get, a consumer creation) or the server's messages with a
// chosen payload (a publish is stored but its acknowledgement never arrives), while
// everything else flows. It speaks just enough of the NATS protocol to find PUB,
// HPUB, MSG and HMSG frames.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	stall func(subject string, payload []byte) bool
	lose  func(payload []byte) bool
	// holdUntil delays the server's messages until then: a slow server.
	holdUntil time.Time
	// version is announced instead of the server's own, when set.
	version string
}

// AnnounceVersion makes the server introduce itself to new connections as another
// version (an old server, say).
func (p *Proxy) AnnounceVersion(v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.version = v
}

var versionField = regexp.MustCompile(`"version":"[^"]*"`)

// rewrite changes the server's INFO line as the test asked.
func (p *Proxy) rewrite(line string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.version == "" || !strings.HasPrefix(line, "INFO ") {
		return line
	}
	return versionField.ReplaceAllString(line, `"version":"`+p.version+`"`)
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
	nc, err := nats.Connect("nats://"+p.ln.Addr().String(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatalf("natstest proxy connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Stall swallows from now on the messages whose subject matches; nil lets all pass.
func (p *Proxy) Stall(match func(subject string) bool) {
	if match == nil {
		p.StallWhere(nil)
		return
	}
	p.StallWhere(func(subject string, _ []byte) bool { return match(subject) })
}

// StallWhere is Stall for a match that also reads the message (a request's body:
// which aggregate a question of the stream's leader is about).
func (p *Proxy) StallWhere(match func(subject string, payload []byte) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stall = match
}

func (p *Proxy) stalls(subject string, payload []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stall != nil && p.stall(subject, payload)
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
		go func() {
			p.frames(s, c, "MSG", "HMSG", func(_ string, payload []byte) bool { return p.loses(payload) }, p.rewrite)
			_ = c.Close()
		}()
		go func() {
			p.frames(c, s, "PUB", "HPUB", p.stalls, nil)
			_ = s.Close()
		}()
	}
}

// LoseReplies drops from now on the server's messages whose payload matches (for
// example the acknowledgements of publishes to a stream); nil lets all pass.
func (p *Proxy) LoseReplies(match func(payload []byte) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lose = match
}

func (p *Proxy) loses(payload []byte) bool {
	p.mu.Lock()
	lose := p.lose != nil && p.lose(payload)
	hold := time.Until(p.holdUntil)
	p.mu.Unlock()
	if hold > 0 {
		time.Sleep(hold)
	}
	return lose
}

// HoldReplies delays the server's messages (acknowledgements among them) for d from
// now, then lets them all through: a server slow for a moment, losing nothing.
func (p *Proxy) HoldReplies(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdUntil = time.Now().Add(d)
}

// frames copies one direction of the protocol frame by frame, dropping the frames
// of the two kinds given (a message with its payload) that drop selects.
func (p *Proxy) frames(from io.Reader, to io.Writer, kind, headerKind string, drop func(subject string, payload []byte) bool, rewrite func(string) string) {
	r := bufio.NewReader(from)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if rewrite != nil {
			line = rewrite(line)
		}
		f := strings.Fields(line)
		var payload []byte
		if len(f) >= 3 && (strings.EqualFold(f[0], kind) || strings.EqualFold(f[0], headerKind)) {
			size, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return
			}
			payload = make([]byte, size+2) // and its CRLF
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			if drop(f[1], payload[:size]) {
				continue
			}
		}
		if _, err := io.WriteString(to, line); err != nil {
			return
		}
		if _, err := to.Write(payload); err != nil {
			return
		}
	}
}
