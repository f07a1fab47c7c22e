package batch

import (
	"context"
	"sync"
)

// each calls fn(k) for every k in [0, n), from workers goroutines at once:
// workers, not a goroutine per account, so that ten thousand accounts cost
// a few goroutines and the runner's job slots do the rest. It stops
// handing out indexes when ctx ends or fn returns false, waits for the
// calls under way, and returns how many indexes it handed out.
func each(ctx context.Context, workers, n int, fn func(k int) bool) int {
	work := make(chan int)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		stopped bool
	)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if !fn(k) {
					mu.Lock()
					stopped = true
					mu.Unlock()
				}
			}
		}()
	}
	fed := 0
	for ; fed < n; fed++ {
		mu.Lock()
		stop := stopped
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		select {
		case work <- fed:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(work)
	wg.Wait()
	return fed
}
