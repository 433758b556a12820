package natstest

import (
	"errors"
	"net/url"
	"strconv"
)

var errNotReady = errors.New("nats-server not ready in time")

func portOf(clientURL string) int {
	u, err := url.Parse(clientURL)
	if err != nil {
		return -1
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		return -1
	}
	return p
}
