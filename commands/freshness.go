package commands

import (
	"context"
	"sync"
)

// freshness shares the round trip that asks where an aggregate ends among the
// concurrent readers of that aggregate, without ever answering a reader with a
// position asked before it arrived: while one question is in flight, every reader
// that comes waits for the next one, which is sent as soon as the first is answered
// and answers them all. Under load an organization has at most two questions
// pending, whatever the number of requests; alone, a reader asks at once.
type freshness struct {
	ask func(ctx context.Context, id string) (uint64, error)

	mu sync.Mutex
	// next has an entry for each aggregate with a question in flight: the question
	// the readers who came during the flight wait for (nil while none came).
	next map[string]*answer
}

type answer struct {
	done chan struct{}
	last uint64
	err  error
}

func newFreshness(ask func(ctx context.Context, id string) (uint64, error)) *freshness {
	return &freshness{ask: ask, next: map[string]*answer{}}
}

// last is where the aggregate ends, asked of the log after this call began.
func (f *freshness) last(ctx context.Context, id string) (uint64, error) {
	f.mu.Lock()
	a, flying := f.next[id]
	switch {
	case !flying: // nothing in flight: ask now
		f.next[id] = nil
		a = &answer{done: make(chan struct{})}
		go f.fly(id, a)
	case a == nil:
		a = &answer{done: make(chan struct{})}
		f.next[id] = a
	}
	f.mu.Unlock()
	select {
	case <-a.done:
		return a.last, a.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// fly asks, answers a, then asks the question the readers who came meanwhile wait
// for, or ends the flight. When the log did not answer, they get the same error at
// once (a 503 no later than the first), not a second wait.
func (f *freshness) fly(id string, a *answer) {
	for a != nil {
		// The question is the readers', not one request's: a reader that gives up
		// must not fail the others. The store bounds the round trip itself.
		a.last, a.err = f.ask(context.Background(), id)
		close(a.done)
		f.mu.Lock()
		next := f.next[id]
		if next != nil && a.err != nil {
			next.err = a.err
			close(next.done)
			next = nil
		}
		if next == nil {
			delete(f.next, id)
		} else {
			f.next[id] = nil // its flight starts: later readers wait for another
		}
		f.mu.Unlock()
		a = next
	}
}
