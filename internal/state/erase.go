package state

import (
	"context"
	"time"
)

// eraseDelay bounds how long an erased inbox body may survive in the -wal
// file. secure_delete zeroes it in the page the UPDATE writes, but the
// page's older copy, with the body, stays in the WAL until the WAL is
// rewritten, which on an idle daemon can be hours. So a second after the last
// erasure a TRUNCATE checkpoint moves the cleared page into the main file and
// empties the WAL; erasures in that second share one checkpoint, which keeps
// it off the per-delivery path.
const eraseDelay = time.Second

// scheduleErase arranges one checkpoint eraseDelay from now, unless one is
// already due.
func (s *Store) scheduleErase() {
	s.eraseMu.Lock()
	defer s.eraseMu.Unlock()
	if s.eraseTimer != nil || s.closed {
		return
	}
	s.eraseTimer = time.AfterFunc(s.eraseAfter(), s.erase)
}

func (s *Store) eraseAfter() time.Duration {
	if s.testEraseDelay > 0 {
		return s.testEraseDelay
	}
	return eraseDelay
}

// erase checkpoints the WAL and truncates it to zero bytes. A reader still
// on an old snapshot makes SQLite answer busy instead of truncating: the
// checkpoint is tried again after another delay, since a reader never holds
// a snapshot for long.
func (s *Store) erase() {
	s.eraseMu.Lock()
	s.eraseTimer = nil
	closed := s.closed
	s.eraseMu.Unlock()
	if closed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var busy, logFrames, done int
	err := s.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
	if err != nil || busy != 0 {
		s.scheduleErase()
	}
}

// stopErase cancels a pending checkpoint before Close, whose own final
// checkpoint removes the WAL.
func (s *Store) stopErase() {
	s.eraseMu.Lock()
	defer s.eraseMu.Unlock()
	s.closed = true
	if s.eraseTimer != nil {
		s.eraseTimer.Stop()
		s.eraseTimer = nil
	}
}
