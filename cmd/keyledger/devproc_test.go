package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/syncbuf"
)

// buildKeyledger builds the binary into a directory of the test's own.
func buildKeyledger(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keyledger")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// devProcess is a `keyledger dev` started by a test, in a process group of its own.
type devProcess struct {
	cmd            *exec.Cmd
	stdout, stderr syncbuf.Buffer
	done           chan struct{} // closed when the process has exited
	stopOnce       sync.Once
}

// startDev starts `keyledger dev` on the data dir, API address, NATS port and
// database given, and returns once /readyz answers 200 and dev has printed its
// gateway token line (the last thing it prints, on every start). The process is
// stopped at the end of the test at the latest.
func startDev(t *testing.T, bin, dataDir, addr, natsPort, databaseURL string) *devProcess {
	t.Helper()
	d := &devProcess{done: make(chan struct{})}
	d.cmd = exec.Command(bin, "dev", "--data-dir", dataDir, "--http-addr", addr, "--nats-port", natsPort)
	d.cmd.Env = append(os.Environ(), "KEYLEDGER_DATABASE_URL="+databaseURL)
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d.cmd.WaitDelay = 5 * time.Second
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(d.stop)

	deadline := time.Now().Add(30 * time.Second)
	for !d.ready(addr) || !gatewayLine.MatchString(d.stdout.String()) {
		select {
		case <-d.done:
			t.Fatalf("keyledger dev exited before it was ready:\n%s\n%s", d.stdout.String(), d.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			t.Fatalf("keyledger dev did not become ready in 30 s:\n%s\n%s", d.stdout.String(), d.stderr.String())
		}
	}
	return d
}

func (d *devProcess) ready(addr string) bool {
	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == 200
}

// Stdout is what dev has printed so far.
func (d *devProcess) Stdout() string { return d.stdout.String() }

// Stderr is what dev has logged so far.
func (d *devProcess) Stderr() string { return d.stderr.String() }

// stop ends dev's process group: SIGTERM, then SIGKILL after 15 s. It can be called
// any number of times.
func (d *devProcess) stop() {
	d.stopOnce.Do(func() {
		pgid := d.cmd.Process.Pid // Setpgid: the group is named after dev
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-d.done
		}
	})
}
