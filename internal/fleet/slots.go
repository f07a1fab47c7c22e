package fleet

import (
	"context"
	"sync"
)

// hostSlots counts the slots in use per host against a limit per host,
// and lets a caller wait until all it asks for fit at once. The runner's
// caps are one (the limit is --max-conns-per-host on every host); each
// account's lease is another (the limit is what the account reserved).
type hostSlots struct {
	limit func(host string) int

	mu      sync.Mutex
	used    map[string]int
	changed chan struct{} // closed and replaced whenever slots are given back
}

func newHostSlots(limit func(host string) int) *hostSlots {
	return &hostSlots{limit: limit, used: map[string]int{}, changed: make(chan struct{})}
}

// take waits until every host of want has room for its count, or ctx
// ends, and takes them all at once, so that no caller holds some slots
// while it waits for others. It leaves keep slots of each host's limit
// free: only a caller that keeps none may take them. then, when not nil,
// runs with the slots taken and s.mu held, to take more without waiting
// (with room and add).
func (s *hostSlots) take(ctx context.Context, want map[string]int, keep int, then func()) error {
	for {
		s.mu.Lock()
		fits := true
		for host, n := range want {
			if s.used[host]+n > s.limit(host)-keep {
				fits = false
				break
			}
		}
		if fits {
			for host, n := range want {
				s.used[host] += n
			}
			if then != nil {
				then()
			}
			s.mu.Unlock()
			return nil
		}
		wait := s.changed
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// room is how many more slots host has; s.mu is held (in take's then).
func (s *hostSlots) room(host string) int { return s.limit(host) - s.used[host] }

// add takes n more slots on host; s.mu is held (in take's then).
func (s *hostSlots) add(host string, n int) { s.used[host] += n }

// give gives slots back and wakes the callers waiting in take.
func (s *hostSlots) give(got map[string]int) {
	s.mu.Lock()
	for host, n := range got {
		s.used[host] -= n
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}
