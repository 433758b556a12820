package commands

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFreshnessNeverAnswersWithAnOlderQuestion: readers that come while a question
// is in flight share the next one, sent after the first is answered; nobody gets an
// answer to a question asked before it came.
func TestFreshnessNeverAnswersWithAnOlderQuestion(t *testing.T) {
	var asked atomic.Uint64
	release := make(chan struct{})
	f := newFreshness(func(context.Context, string) (uint64, error) {
		n := asked.Add(1) // the n-th question answers n
		<-release
		return n, nil
	})
	first := make(chan uint64)
	go func() { v, _ := f.last(context.Background(), "org"); first <- v }()
	for asked.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	var started atomic.Int32
	later := make([]uint64, 20)
	for i := range later {
		wg.Add(1)
		go func() { defer wg.Done(); started.Add(1); later[i], _ = f.last(context.Background(), "org") }()
	}
	for started.Load() != int32(len(later)) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // they wait behind the first question
	close(release)
	if v := <-first; v != 1 {
		t.Fatalf("the first reader got %d", v)
	}
	wg.Wait()
	for i, v := range later {
		if v < 2 { // the property; that they all share question 2 is the usual case
			t.Fatalf("reader %d got the answer of question %d, asked before it came", i, v)
		}
	}
	n := asked.Load()
	if n > 10 { // 2 but for readers descheduled past the first answer
		t.Fatalf("%d questions for 21 concurrent readers", n)
	}
	// Another aggregate is asked on its own; a reader alone asks at once.
	if v, _ := f.last(context.Background(), "other"); v != n+1 {
		t.Fatalf("got %d", v)
	}
}

// TestFreshnessFailsTheWaitersAtOnce: when the log does not answer, the readers
// waiting for the next question get that error, not a second wait.
func TestFreshnessFailsTheWaitersAtOnce(t *testing.T) {
	var asked atomic.Int32
	release := make(chan struct{})
	down := errors.New("log down")
	again := errors.New("asked again")
	f := newFreshness(func(context.Context, string) (uint64, error) {
		if asked.Add(1) > 1 {
			return 0, again // a second wait: what the waiters must not get
		}
		<-release
		return 0, down
	})
	errs := make(chan error, 2)
	go func() { _, err := f.last(context.Background(), "org"); errs <- err }()
	for asked.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	go func() { _, err := f.last(context.Background(), "org"); errs <- err }()
	// A reader that gives up while the question is in flight stops waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.last(ctx, "org"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a reader that gave up: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	for range 2 {
		if err := <-errs; !errors.Is(err, down) {
			t.Fatalf("got %v", err)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("%d questions, want 1", n)
	}
}
