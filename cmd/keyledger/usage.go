package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// UsageSendConfig is `keyledger usage send`: usage records as NDJSON (one JSON object
// per line, the fields of POST /v1/usage's records) from a file or standard input,
// posted in batches to a running server with the gateway token.
type UsageSendConfig struct {
	Server string
	File   string // "-" or "": standard input
	Batch  int    // records per request, 1 to 1000
}

// Validate joins every problem.
func (u UsageSendConfig) Validate() error {
	var errs []error
	if _, err := serverURL(u.Server); err != nil {
		errs = append(errs, err)
	}
	if u.Batch < 1 || u.Batch > 1000 {
		errs = append(errs, fmt.Errorf("--batch must be from 1 to 1000, got %d", u.Batch))
	}
	return errors.Join(errs...)
}

func (c *Config) usageSendFlags(fs *flag.FlagSet) {
	c.gatewayClientFlags(fs, &c.UsageSend.Server)
	fs.StringVar(&c.UsageSend.File, "file", "-", "the NDJSON file of records; - for standard input")
	fs.IntVar(&c.UsageSend.Batch, "batch", 1000, "records per request, 1 to 1000")
}

// usageTotals counts what the server did with the records sent.
type usageTotals struct{ accepted, duplicates, rejected int }

// runUsageSend posts the records and prints the totals, and each rejected record
// with its code on errOut. It returns errRefused (exit 3) when any was rejected.
func runUsageSend(ctx context.Context, cfg Config, in io.Reader, out, errOut io.Writer) error {
	if err := errors.Join(cfg.Validate(need{}), cfg.UsageSend.Validate()); err != nil {
		return err
	}
	token, err := cfg.verifyToken()
	if err != nil {
		return err
	}
	base, _ := serverURL(cfg.UsageSend.Server)
	if cfg.UsageSend.File != "" && cfg.UsageSend.File != "-" {
		f, err := os.Open(cfg.UsageSend.File)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	client := &http.Client{Timeout: 30 * time.Second}
	var totals usageTotals
	var batch []json.RawMessage
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := postUsage(ctx, client, base, token, batch, &totals, errOut)
		batch = batch[:0]
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if !json.Valid(b) {
			return fmt.Errorf("line %d is not one JSON record", line)
		}
		batch = append(batch, append(json.RawMessage(nil), b...))
		if len(batch) == cfg.UsageSend.Batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "accepted %d, duplicates %d, rejected %d\n", totals.accepted, totals.duplicates, totals.rejected)
	if totals.rejected > 0 {
		return errRefused
	}
	return nil
}

// usageAttempts bounds the tries of one batch the server answers 503 (an index
// catching up, NATS failing over): each waits for the answer's Retry-After.
const usageAttempts = 5

func postUsage(ctx context.Context, client *http.Client, base, token string, recs []json.RawMessage, totals *usageTotals, errOut io.Writer) error {
	body, _ := json.Marshal(map[string]any{"records": recs})
	var raw []byte
	for attempt := 1; ; attempt++ {
		status, retryAfter, b, err := postOnce(ctx, client, base, token, body)
		if err != nil {
			return err
		}
		raw = b
		if status == http.StatusOK {
			break
		}
		if status != http.StatusServiceUnavailable || attempt == usageAttempts {
			return fmt.Errorf("POST /v1/usage: %d %s", status, bytes.TrimSpace(raw))
		}
		select { // the records are idempotent by id: the batch is sent again whole
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryAfter):
		}
	}
	var answer struct {
		Items []struct {
			RecordID string `json:"record_id"`
			Status   string `json:"status"`
			Code     string `json:"code"`
		} `json:"items"`
		Accepted   int `json:"accepted"`
		Duplicates int `json:"duplicates"`
		Rejected   int `json:"rejected"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return fmt.Errorf("POST /v1/usage answered: %w", err)
	}
	totals.accepted += answer.Accepted
	totals.duplicates += answer.Duplicates
	totals.rejected += answer.Rejected
	for _, it := range answer.Items {
		if it.Status == "rejected" {
			fmt.Fprintf(errOut, "rejected %s: %s\n", it.RecordID, it.Code)
		}
	}
	return nil
}

// postOnce posts one batch and returns the status, the Retry-After (1 s when the
// answer gives none) and the body.
func postOnce(ctx context.Context, client *http.Client, base, token string, body []byte) (int, time.Duration, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/usage", bytes.NewReader(body))
	if err != nil {
		return 0, 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	wait := time.Second
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s >= 0 {
		wait = time.Duration(s) * time.Second
	}
	return res.StatusCode, wait, raw, nil
}
