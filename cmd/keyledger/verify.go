package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// VerifyFlags are the operator's check of one call against a running server.
type verifyFlags struct {
	server, credential, workspace, product, ip string
}

var vf verifyFlags

func (c *Config) verifyFlags(fs *flag.FlagSet) {
	fs.StringVar(&vf.server, "server", env("KEYLEDGER_SERVER", "http://localhost:8080"), "keyledger base URL (KEYLEDGER_SERVER)")
	fs.StringVar(&vf.credential, "credential", "", "the API key or access key secret to check")
	fs.StringVar(&vf.workspace, "workspace", "", "the workspace the call targets")
	fs.StringVar(&vf.product, "product", "", "maas or search")
	fs.StringVar(&vf.ip, "ip", "127.0.0.1", "the caller's source IP")
}

// runVerify asks POST /v1/verify with the gateway token and prints the decision. It
// returns whether the call is allowed.
func runVerify(ctx context.Context, cfg Config, out io.Writer) (bool, error) {
	var errs []error
	if cfg.GatewayToken == "" {
		errs = append(errs, errors.New("KEYLEDGER_GATEWAY_TOKEN (--gateway-token) is required"))
	}
	for name, v := range map[string]string{"--credential": vf.credential, "--workspace": vf.workspace, "--product": vf.product} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	body, _ := json.Marshal(map[string]string{"credential": vf.credential, "workspace_id": vf.workspace, "product": vf.product, "source_ip": vf.ip})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(vf.server, "/")+"/v1/verify", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+cfg.GatewayToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return false, fmt.Errorf("server answered %d: %s", res.StatusCode, bytes.TrimSpace(raw))
	}
	var d struct {
		Allowed bool `json:"allowed"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return false, err
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, raw, "", "  ")
	fmt.Fprintln(out, pretty.String())
	return d.Allowed, nil
}
