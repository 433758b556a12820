package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/syncbuf"
	"github.com/keyledger/keyledger/projections/pgtest"
)

// TestREADMEFirstStepsRunAsPasted runs the README's "First steps with `make run`"
// block, as a newcomer pastes it, against a fresh `keyledger dev`: every HTTP call
// must answer 2xx, every jq must succeed, and what the block's comments announce
// (`echo "exit $?"   # 3: IP_NOT_ALLOWED`, `-w '%{http_code}\n' …   # 204`) must be
// what it prints, in that order. It also checks that the README links only to files
// of the repository.
func TestREADMEFirstStepsRunAsPasted(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	checkREADMELinks(t, root, string(readme))

	runFirstSteps(t, firstStepsBlock(t, string(readme)))
}

// runFirstSteps runs the first-steps block against a fresh `keyledger dev` and
// checks what it printed.
func runFirstSteps(t *testing.T, block string) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: the README's first steps need curl and jq (apt-get install -y curl jq): %v", tool, err)
		}
	}
	// The curl wrapper below logs each status with %{stderr} (curl 7.63 and later).
	if out, err := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{stderr}ok", "file:///dev/null").CombinedOutput(); err != nil || string(out) != "ok" {
		t.Fatalf("curl does not support -w %%{stderr} (curl >= 7.63 needed; apt-get install -y curl jq): %v %q", err, out)
	}

	port := strconv.Itoa(freePort(t))
	if !strings.Contains(block, "localhost:8080") {
		t.Fatalf("the first-steps block does not call localhost:8080 any more; this test needs updating:\n%s", block)
	}
	pasted := strings.ReplaceAll(block, "localhost:8080", "127.0.0.1:"+port)
	if strings.Contains(pasted, "8080") { // it would reach whatever listens there
		t.Fatalf("the first-steps block names port 8080 other than as localhost:8080; this test needs updating:\n%s", block)
	}
	want := announced(t, block)

	bin := buildKeyledger(t)
	data := t.TempDir()
	addr := "127.0.0.1:" + port
	dev := startDev(t, bin, data, addr, strconv.Itoa(freePort(t)), pgtest.NewDatabase(t))
	access := secretLine.FindStringSubmatch(dev.Stdout())
	gateway := gatewayLine.FindStringSubmatch(dev.Stdout())
	if access == nil || gateway == nil {
		t.Fatalf("dev did not print both export lines:\n%s", dev.Stdout())
	}

	// The repository folder, as far as the block sees it: ./bin/keyledger.
	work := t.TempDir()
	logs := t.TempDir()
	for _, dir := range []string{filepath.Join(work, "bin"), filepath.Join(work, "tmp")} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bin, filepath.Join(work, "bin", "keyledger")); err != nil {
		t.Fatal(err)
	}
	statusLog, jqLog := filepath.Join(logs, "status.log"), filepath.Join(logs, "jq.log")
	// curl and jq as the block calls them, plus a record: curl appends each call's
	// status to statusLog (after the block's own -w output, which stays on stdout),
	// jq logs a failure to jqLog; both keep their output and exit status.
	prelude := `set -o pipefail
curl() {
  local args=() w=''
  while (($#)); do
    case $1 in
      -w|--write-out) w=$2; shift 2 ;;
      --write-out=*) w=${1#--write-out=}; shift ;;
      -w?*) w=${1#-w}; shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  command curl "${args[@]}" -w "$w%{stderr}%{http_code}\n" 2>>` + shellQuote(statusLog) + `
}
jq() {
  command jq "$@"
  local rc=$?
  ((rc == 0)) || printf 'jq %s: exit %d\n' "$*" "$rc" >>` + shellQuote(jqLog) + `
  return "$rc"
}
`
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", prelude+pasted)
	cmd.Dir = work
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + work, // no ~/.curlrc of the machine
		"TMPDIR=" + filepath.Join(work, "tmp"),
		"KEYLEDGER_ACCESS_KEY=" + access[1],
		"KEYLEDGER_GATEWAY_TOKEN=" + gateway[1],
		"KEYLEDGER_HTTP_ADDR=" + addr,
		"KEYLEDGER_DATA_DIR=" + data,
	}
	var stdout, stderr syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("the first-steps block ran in %v", time.Since(start).Round(time.Millisecond))

	var problems []string
	if ctx.Err() != nil {
		problems = append(problems, "the block did not finish within 60 s")
	}
	if runErr != nil {
		problems = append(problems, "bash: "+runErr.Error())
	}
	statuses, _ := os.ReadFile(statusLog)
	recorded := strings.Fields(string(statuses))
	for _, s := range recorded {
		if len(s) != 3 || s[0] != '2' {
			problems = append(problems, "an HTTP call answered "+strconv.Quote(s)+", not 2xx")
		}
	}
	if n := curlCalls(block); len(recorded) < n {
		problems = append(problems, "the block makes "+strconv.Itoa(n)+" curl calls, "+strconv.Itoa(len(recorded))+" statuses recorded")
	}
	if jqFailures, _ := os.ReadFile(jqLog); len(jqFailures) > 0 {
		problems = append(problems, "jq failed:\n"+string(jqFailures))
	}
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	if !regexp.MustCompile(`^ws_[0-9A-HJKMNP-TV-Z]{26}$`).MatchString(lines[0]) {
		problems = append(problems, "the block's first line, echo \"$WS\", is "+strconv.Quote(lines[0])+", not a workspace id")
	}
	if got := printed(lines); !matches(got, want) {
		problems = append(problems, "the comments announce, in order,\n\t"+strings.Join(want, "\n\t")+
			"\nthe block printed\n\t"+strings.Join(got, "\n\t"))
	}
	if len(problems) > 0 {
		t.Errorf("the README's first steps do not run as pasted:\n- %s\n\n--- stdout:\n%s\n--- stderr:\n%s\n--- HTTP statuses, in order:\n%s\n--- block as run:\n%s\n--- dev's log (last 4 KiB):\n%s",
			strings.Join(problems, "\n- "), stdout.String(), stderr.String(), statuses, pasted, tail(dev.Stderr(), 4096))
	}
}

// firstStepsBlock is the first ```sh block of the README that uses the access key
// dev printed.
func firstStepsBlock(t *testing.T, readme string) string {
	t.Helper()
	blocks, _ := splitMarkdown(readme)
	for _, b := range blocks {
		if b.lang == "sh" && strings.Contains(b.text, `A="Authorization: Bearer`) {
			return b.text
		}
	}
	t.Fatal("README.md has no ```sh block with A=\"Authorization: Bearer …\" (the first steps)")
	return ""
}

type fencedBlock struct{ lang, text string }

// splitMarkdown splits a Markdown text into its ``` blocks, with their language,
// and the rest.
func splitMarkdown(md string) (blocks []fencedBlock, prose string) {
	var rest strings.Builder
	var cur *fencedBlock
	for _, line := range strings.SplitAfter(md, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &fencedBlock{lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line
		default:
			rest.WriteString(line)
		}
	}
	return blocks, rest.String()
}

var (
	verifyExit = regexp.MustCompile(`echo "exit \$\?"\s*#\s*(\d+)(?::\s*([A-Z_]+\b))?`)
	httpCode   = regexp.MustCompile(`%\{http_code\}.*#\s*(\d{3})\b`)
	decision   = regexp.MustCompile(`"code": "([A-Z_]+)"`)
	statusLine = regexp.MustCompile(`^\d{3}$`)
	curlWord   = regexp.MustCompile(`(^|[\s(|;])curl\s`)
)

// announced is what the block's comments say it prints, in order: "exit N (CODE)",
// or "exit N" when the comment names no decision code, for each `keyledger verify`,
// and the status for each curl that prints its own.
func announced(t *testing.T, block string) []string {
	t.Helper()
	var want []string
	for _, line := range strings.Split(block, "\n") {
		if m := verifyExit.FindStringSubmatch(line); m != nil {
			if m[2] != "" {
				want = append(want, "exit "+m[1]+" ("+m[2]+")")
			} else {
				want = append(want, "exit "+m[1])
			}
		} else if strings.Contains(line, "keyledger verify") {
			t.Fatalf("a `keyledger verify` of the first steps does not say its exit status as `echo \"exit $?\"   # N`: %s", line)
		}
		if m := httpCode.FindStringSubmatch(line); m != nil {
			want = append(want, m[1])
		}
	}
	if len(want) == 0 {
		t.Fatal("the first-steps block announces no result; this test checks nothing")
	}
	return want
}

// printed is what the block printed of the announced kinds, in order: the status
// lines, and the "exit N" lines as "exit N (CODE)", CODE being that of the last
// decision printed before (verify prints its decision, then the block echoes its
// exit status).
func printed(lines []string) []string {
	var got []string
	code := ""
	for _, l := range lines {
		if m := decision.FindStringSubmatch(l); m != nil {
			code = m[1]
		}
		switch {
		case statusLine.MatchString(l):
			got = append(got, l)
		case strings.HasPrefix(l, "exit "):
			got = append(got, l+" ("+code+")")
			code = ""
		}
	}
	return got
}

// matches: got is want, an "exit N" of want standing for "exit N (any code)".
func matches(got, want []string) bool {
	return slices.EqualFunc(got, want, func(g, w string) bool {
		return g == w || (strings.HasPrefix(w, "exit ") && !strings.Contains(w, "(") && strings.HasPrefix(g, w+" ("))
	})
}

// curlCalls counts the curl commands written in the block, comments left out.
func curlCalls(block string) int {
	n := 0
	for _, line := range strings.Split(block, "\n") {
		if i := strings.Index(line, "#"); i == 0 || (i > 0 && (line[i-1] == ' ' || line[i-1] == '\t')) {
			line = line[:i]
		}
		n += len(curlWord.FindAllString(line, -1))
	}
	return n
}

var (
	codeSpan   = regexp.MustCompile("`[^`\n]*`")
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S*?)>?(?:\s|$)`)
	bareURL    = regexp.MustCompile(`(?i)\bhttps?://|\bwww\.|\bmailto:`)
)

// checkREADMELinks: every link of the README is a relative path to a file of the
// repository, and its prose has no URL that GitHub would make a link of.
func checkREADMELinks(t *testing.T, root, readme string) {
	t.Helper()
	_, prose := splitMarkdown(readme)
	prose = codeSpan.ReplaceAllString(prose, "``")
	var targets []string
	for _, m := range inlineLink.FindAllStringSubmatch(prose, -1) {
		targets = append(targets, m[1])
	}
	for _, m := range refLink.FindAllStringSubmatch(prose, -1) {
		targets = append(targets, m[1])
	}
	for _, target := range targets {
		path, _, _ := strings.Cut(target, "#")
		if path == "" { // an anchor of the README itself
			continue
		}
		if strings.Contains(path, ":") || strings.HasPrefix(path, "/") || strings.HasPrefix(path, "../") ||
			filepath.IsAbs(path) {
			t.Errorf("README.md links %q, outside the repository", target)
			continue
		}
		full := filepath.Join(root, filepath.FromSlash(path))
		if rel, err := filepath.Rel(root, full); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Errorf("README.md links %q, outside the repository", target)
			continue
		}
		if _, err := os.Stat(full); err != nil {
			t.Errorf("README.md links %q, which is not in the repository: %v", target, err)
		}
	}
	if loc := bareURL.FindStringIndex(prose); loc != nil {
		t.Errorf("README.md has a URL in its prose (GitHub makes it a link): %q", prose[loc[0]:min(len(prose), loc[0]+60)])
	}
}

// shellQuote quotes s for bash.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
