package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// portFree checks that addr can be listened on, so that a port held by another
// process (often an earlier `keyledger dev` still running) is reported up front in
// words that name the way out, rather than as a bind error deep inside a component.
// The listener is closed at once: a process that takes the port in between still
// fails, later and less clearly, which is rare enough on a developer's machine.
func portFree(addr, flagName, envName string) error {
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return addrInUse(addr, flagName, envName)
	}
	if err != nil {
		return fmt.Errorf("listen on %s (%s, %s): %w", addr, flagName, envName, err)
	}
	return l.Close()
}

// addrInUse is the error of a taken port: which port, and which flag or variable
// moves it.
func addrInUse(addr, flagName, envName string) error {
	port := addr
	if _, p, err := net.SplitHostPort(addr); err == nil {
		port = p
	}
	return fmt.Errorf("%s: address already in use: another process listens on port %s; stop it, or choose another port with %s or %s",
		addr, port, flagName, envName)
}

// devPortsFree checks the two ports `keyledger dev` listens on: the embedded NATS
// server's (on 127.0.0.1, as natstest.Run binds it) and the API's.
func devPortsFree(cfg Config) error {
	return errors.Join(
		portFree(net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.NATSPort)), "--nats-port", "KEYLEDGER_DEV_NATS_PORT"),
		portFree(cfg.HTTPAddr, "--http-addr", "KEYLEDGER_HTTP_ADDR"),
	)
}
