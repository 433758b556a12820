package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// VerifyConfig is the operator's check of one call against a running server: where
// the server is and the call to check. The gateway token comes from Config, or from
// the secrets `keyledger dev` keeps in Config.DataDir.
type VerifyConfig struct {
	// Server is a base URL ("http://host:8080") or a listen address as given to
	// --http-addr (":8080", "127.0.0.1:8080"), which means this machine: so the
	// variables a developer exported for `keyledger dev` also point verify at it.
	Server     string
	Credential string // the API key or access key secret to check
	Workspace  string // the workspace the call targets
	Product    string // maas or search
	IP         string // the caller's source IP
}

// Validate joins every problem.
func (v VerifyConfig) Validate() error {
	var errs []error
	if _, err := serverURL(v.Server); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct{ name, value string }{{"--credential", v.Credential}, {"--workspace", v.Workspace}, {"--product", v.Product}} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.name))
		}
	}
	return errors.Join(errs...)
}

// gatewayClientFlags are those of a command that calls a running server as a
// gateway: where it is, and the token (by default the dev data dir's).
func (c *Config) gatewayClientFlags(fs *flag.FlagSet, server *string) {
	fs.StringVar(server, "server", env("KEYLEDGER_SERVER", env("KEYLEDGER_HTTP_ADDR", ":8080")),
		"the server: a base URL, or a listen address such as :8080 meaning http://127.0.0.1:8080 (KEYLEDGER_SERVER, else KEYLEDGER_HTTP_ADDR)")
	c.gatewayTokenFlag(fs, "service `token` of gateways; default: the one keyledger dev keeps in <data-dir>/secrets.json")
	c.dataDirFlag(fs, "the data dir of keyledger dev, whose secrets.json gives the gateway token when none is set")
}

func (c *Config) verifyFlags(fs *flag.FlagSet) {
	c.gatewayClientFlags(fs, &c.Verify.Server)
	fs.StringVar(&c.Verify.Credential, "credential", "", "the API key or access key secret to check")
	fs.StringVar(&c.Verify.Workspace, "workspace", "", "the workspace the call targets")
	fs.StringVar(&c.Verify.Product, "product", "", "maas or search")
	fs.StringVar(&c.Verify.IP, "ip", "127.0.0.1", "the caller's source IP")
}

// errRefused is a decision of "not allowed": main exits 3 on it, apart from the
// exit 1 of a failure to ask, so scripts can tell the two apart.
var errRefused = errors.New("the call is refused")

// serverURL turns --server into a base URL. A listen address with no host or an
// unspecified one (":8080", "0.0.0.0:8080") is reached on the loopback.
func serverURL(s string) (string, error) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("--server %q: want a URL such as http://127.0.0.1:8080 or an address such as :8080", s)
		}
		return strings.TrimRight(s, "/"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		return "", fmt.Errorf("--server %q: want a URL such as http://127.0.0.1:8080 or an address such as :8080", s)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// verifyToken is the gateway token: the one given, else the one `keyledger dev`
// generated, so that on a developer's machine verify needs no secret typed in.
func (c Config) verifyToken() (string, error) {
	if c.GatewayToken != "" {
		return c.GatewayToken, nil
	}
	path := filepath.Join(c.DataDir, "secrets.json")
	s, err := readDevSecrets(c.DataDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("no gateway token: set KEYLEDGER_GATEWAY_TOKEN (--gateway-token), or point --data-dir (KEYLEDGER_DATA_DIR) at the folder of `keyledger dev` (%s does not exist)", path)
	case err != nil:
		return "", fmt.Errorf("gateway token from %s: %w", path, err)
	case s.GatewayToken == "":
		return "", fmt.Errorf("no gateway token: set KEYLEDGER_GATEWAY_TOKEN (--gateway-token); %s has none", path)
	}
	return s.GatewayToken, nil
}

// runVerify asks POST /v1/verify with the gateway token and prints the decision. It
// returns errRefused when the call is not allowed.
func runVerify(ctx context.Context, cfg Config, out io.Writer) error {
	if err := errors.Join(cfg.Validate(need{}), cfg.Verify.Validate()); err != nil {
		return err
	}
	token, err := cfg.verifyToken()
	if err != nil {
		return err
	}
	base, _ := serverURL(cfg.Verify.Server)
	v := cfg.Verify
	body, _ := json.Marshal(map[string]string{"credential": v.Credential, "workspace_id": v.Workspace, "product": v.Product, "source_ip": v.IP})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/verify", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return fmt.Errorf("%s answered %d: %s", base, res.StatusCode, bytes.TrimSpace(raw))
	}
	var d struct {
		Allowed bool `json:"allowed"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return err
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, bytes.TrimSpace(raw), "", "  ")
	fmt.Fprintln(out, pretty.String())
	if !d.Allowed {
		return errRefused
	}
	return nil
}
