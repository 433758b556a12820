package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
)

// occupy holds a port on 127.0.0.1 for the test, as another process would.
func occupy(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func devConfig(t *testing.T, natsPort int, httpAddr string) Config {
	return Config{DataDir: t.TempDir(), NATSPort: natsPort, HTTPAddr: httpAddr,
		DatabaseURL: "postgres://nobody@127.0.0.1:1/never?sslmode=disable"}
}

// dev names the taken port and the way to change it, before starting anything (the
// database URL above is never reached).
func TestDevSaysWhichPortIsTaken(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		cfg  func(taken int) Config
		want []string
	}{
		{"nats", func(taken int) Config { return devConfig(t, taken, "127.0.0.1:"+strconv.Itoa(freePort(t))) },
			[]string{"address already in use", "--nats-port", "KEYLEDGER_DEV_NATS_PORT"}},
		{"http", func(taken int) Config { return devConfig(t, freePort(t), "127.0.0.1:"+strconv.Itoa(taken)) },
			[]string{"address already in use", "--http-addr", "KEYLEDGER_HTTP_ADDR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			taken := occupy(t)
			err := runDev(context.Background(), tc.cfg(taken), logger)
			if err == nil {
				t.Fatal("dev started on a taken port")
			}
			for _, w := range append(tc.want, "port "+strconv.Itoa(taken)) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q: %v", w, err)
				}
			}
		})
	}
}

func TestPortFree(t *testing.T) {
	if err := portFree("127.0.0.1:"+strconv.Itoa(freePort(t)), "--x", "X"); err != nil {
		t.Fatalf("a free port: %v", err)
	}
	taken := occupy(t)
	err := portFree(":"+strconv.Itoa(taken), "--http-addr", "KEYLEDGER_HTTP_ADDR")
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "KEYLEDGER_HTTP_ADDR") {
		t.Fatalf("a taken port: %v", err)
	}
}
