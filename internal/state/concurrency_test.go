package state

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"casesync/engine"
)

// TestStore_ConcurrentWriters hammers one file from many goroutines through
// two Stores (as two processes would): the single writer and BEGIN
// IMMEDIATE with busy_timeout must queue every write, never fail one with
// SQLITE_BUSY, while readers keep reading.
func TestStore_ConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	var stores [2]*Store
	for i := range stores {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	const (
		workers  = 8
		pages    = 10
		perPage  = 10
		delivery = 5 // delivery ids every worker puts, so all but one put are dups
	)
	ctx := t.Context()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		dups int
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range workers {
		s := stores[w%2]
		pipeline := fmt.Sprintf("p%d", w)
		wg.Go(func() {
			run, err := s.StartRun(ctx, pipeline, "h", "test", t0)
			if err != nil {
				fail(err)
				return
			}
			for pg := range pages {
				c := engine.PageCommit{RunID: run, Pipeline: pipeline, Now: t0.Add(time.Duration(pg) * time.Second), Cursor: ptr(fmt.Sprint(pg))}
				for i := range perPage {
					key := fmt.Sprintf("k%d-%d", pg, i)
					if i%5 == 0 {
						c.Outcomes = append(c.Outcomes, failed(key, "http_503"))
					} else {
						c.Outcomes = append(c.Outcomes, created(key, "h", "T"+key))
					}
				}
				if err := s.CommitPage(ctx, c); err != nil {
					fail(err)
				}
				if _, err := s.Stats(ctx); err != nil {
					fail(err)
				}
			}
			for d := range delivery {
				dup, err := s.InboxPut(ctx, engine.InboxItem{Inbox: "in", DeliveryID: fmt.Sprint(d), Received: t0})
				if err != nil {
					fail(err)
				}
				if dup {
					mu.Lock()
					dups++
					mu.Unlock()
				}
			}
			if _, err := s.RequeueNow(ctx, pipeline, "", "cli:test", t0); err != nil {
				fail(err)
			}
			if err := s.FinishRun(ctx, run, "succeeded", engine.Counts{}, "", t0); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}

	s := stores[0]
	var outcomes, records, queued int
	s.r.QueryRowContext(ctx, `SELECT count(*) FROM outcomes`).Scan(&outcomes)
	s.r.QueryRowContext(ctx, `SELECT count(*) FROM records`).Scan(&records)
	s.r.QueryRowContext(ctx, `SELECT count(*) FROM retry_queue`).Scan(&queued)
	if want := workers * pages * perPage; outcomes != want {
		t.Errorf("outcomes = %d, want %d", outcomes, want)
	}
	if want := workers * pages * perPage * 4 / 5; records != want {
		t.Errorf("records = %d, want %d", records, want)
	}
	if want := workers * pages * perPage / 5; queued != want {
		t.Errorf("queued = %d, want %d", queued, want)
	}
	if want := (workers - 1) * delivery; dups != want {
		t.Errorf("duplicate deliveries = %d, want %d", dups, want)
	}
	stats, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for w := range workers {
		st := stats[fmt.Sprintf("p%d", w)]
		if st.Cursor != fmt.Sprint(pages-1) || st.LastRun.Status != "succeeded" {
			t.Errorf("p%d: cursor %q, last run %q; want %d and succeeded", w, st.Cursor, st.LastRun.Status, pages-1)
		}
	}
}
