package natstest

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Cluster is n in-process JetStream servers routed together, as a production
// deployment of three nodes is.
type Cluster struct{ Servers []*server.Server }

// StartCluster runs n clustered servers on random ports; shut down by t.Cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	dir := t.TempDir()
	c := &Cluster{}
	for i := range n {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: filepath.Join(dir, fmt.Sprint(i)), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "keyledger", Host: "127.0.0.1", Port: ports[i]}, Routes: routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		c.Servers = append(c.Servers, s)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range c.Servers {
		for !s.ReadyForConnections(100*time.Millisecond) || !s.JetStreamIsCurrent() {
			if time.Now().After(deadline) {
				t.Fatal("natstest: the cluster did not form")
			}
		}
	}
	return c
}

// Connect opens a client connection to every node, closed at the end of the test.
func (c *Cluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	var urls []string
	for _, s := range c.Servers {
		urls = append(urls, s.ClientURL())
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatalf("natstest cluster connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
