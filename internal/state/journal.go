package state

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"unicode/utf8"

	"casesync/engine"
)

// The intent journal is where a create's intent is recorded before the
// create is sent: one line appended to "<state>-intents" with one
// write(2). Once write returns, the line survives the process being
// killed (SIGKILL included) as a committed SQLite transaction in WAL mode
// with synchronous=NORMAL does, and like it, not a power loss. It replaced
// an INSERT committed per create, which with its locks, WAL frame and page
// reads was about a tenth of the engine's CPU when a rate-limited target
// spaces creates apart (engine bench --scenario e2e), since group commit
// finds no company there.
//
// The journal is folded into write_intents inside each page commit's
// transaction, before the page's outcomes clear their records' intents,
// with the offset folded to; after the commit the file is truncated when
// nothing was appended meanwhile (and rewritten with only the unfolded
// lines once it passes a megabyte, should that never happen). An abandoned create is a line too, so
// lines apply in order. What the journal holds unfolded counts wherever
// write_intents is read (Known, CreateIntent). A store opening the file
// folds what a crash left, from the recorded offset on. Every Store of one
// path in the process shares the path's journal, as they share its lease.

// journalEntry is one line: a create's intent, or (Abandon) its removal.
type journalEntry struct {
	Pipeline  string `json:"p"`
	RecordKey string `json:"k"`
	// RecordKeyBytes holds, on a line, a record key that is not UTF-8
	// (a SQL source's id column may hold such text), which a JSON string
	// would not keep: json.Marshal puts U+FFFD in place of each bad byte,
	// and a rerun would not find the intent under the key it looks up.
	RecordKeyBytes []byte `json:"kb,omitempty"`
	PayloadHash    string `json:"h,omitempty"`
	RunID          int64  `json:"r,omitempty"`
	At             string `json:"at,omitempty"`
	Abandon        bool   `json:"x,omitempty"`
}

// journalLines is entries as the journal's lines.
func journalLines(entries []journalEntry) ([]byte, error) {
	var buf []byte
	for _, e := range entries {
		if !utf8.ValidString(e.RecordKey) {
			e.RecordKey, e.RecordKeyBytes = "", []byte(e.RecordKey)
		}
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		buf = append(append(buf, b...), '\n')
	}
	return buf, nil
}

type journal struct {
	path string
	// foldMu is held by a fold from its transaction until the journal
	// forgets what it folded, and shared by the readers that combine
	// write_intents with the unfolded lines, so no fold commits between
	// their two reads.
	foldMu sync.RWMutex

	mu      sync.Mutex
	refs    int
	f       *os.File
	gen     string // the header of the current file
	size    int64  // bytes written to the current file
	torn    bool   // the last write failed part way
	pending []journalEntry
}

var journals = struct {
	sync.Mutex
	open map[string]*journal
}{open: map[string]*journal{}}

// openJournal returns the journal of the state at abs, folding into w what
// an earlier process left in it when this process opens it first.
func openJournal(ctx context.Context, abs string, w *sql.DB) (*journal, error) {
	journals.Lock()
	defer journals.Unlock()
	if j := journals.open[abs]; j != nil {
		j.refs++
		return j, nil
	}
	j := &journal{path: abs + "-intents", refs: 1}
	if err := j.recover(ctx, w); err != nil {
		return nil, fmt.Errorf("intent journal: %w", err)
	}
	journals.open[abs] = j
	return j, nil
}

// release closes the journal when the last Store of its path lets go.
func (j *journal) release(abs string) {
	journals.Lock()
	defer journals.Unlock()
	if j.refs--; j.refs > 0 {
		return
	}
	delete(journals.open, abs)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
	}
}

// recover folds the lines a previous process left past the recorded
// offset, then starts an empty journal.
func (j *journal) recover(ctx context.Context, w *sql.DB) error {
	data, err := os.ReadFile(j.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// A compaction the process was killed in the middle of.
	os.Remove(j.path + ".tmp")
	if _, entries := parseJournal(data); len(entries) > 0 {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		es, err := unfolded(ctx, tx, data)
		if err == nil {
			err = applyEntries(ctx, tx, es)
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
		if err != nil {
			return err
		}
	}
	return j.restart()
}

// readJournal is a read-only store's view of the journal: the lines its
// writer has not folded yet, read once at open and never written, so a
// dry-run after a crash counts the intents the next run will find.
func readJournal(ctx context.Context, abs string, r *sql.DB) (*journal, error) {
	data, err := os.ReadFile(abs + "-intents")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("intent journal: %w", err)
	}
	es, err := unfolded(ctx, r, data)
	if err != nil || len(es) == 0 {
		return nil, err
	}
	return &journal{path: abs + "-intents", pending: es}, nil
}

// unfolded returns the lines of the journal data past the offset that the
// state (read through q) records its last fold of that journal reached.
func unfolded(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, data []byte) ([]journalEntry, error) {
	gen, entries := parseJournal(data)
	if len(entries) == 0 {
		return nil, nil
	}
	var markGen string
	var folded int64
	err := q.QueryRowContext(ctx, `SELECT gen, folded FROM intent_journal WHERE id = 1`).Scan(&markGen, &folded)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if markGen != gen {
		folded = 0
	}
	var es []journalEntry
	for _, l := range entries {
		if l.end > folded {
			es = append(es, l.e)
		}
	}
	return es, nil
}

// located is a line and the offset just past it.
type located struct {
	e   journalEntry
	end int64
}

// parseJournal reads the header and the lines; a line that does not
// parse (the end of one a crash cut short, whose create was never sent)
// is skipped.
func parseJournal(data []byte) (gen string, entries []located) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var off int64
	first := true
	for sc.Scan() {
		line := sc.Bytes()
		off += int64(len(line)) + 1
		if first {
			first = false
			var h struct{ Journal string }
			if json.Unmarshal(line, &h) == nil && h.Journal != "" {
				gen = h.Journal
				continue
			}
		}
		var e journalEntry
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		if e.RecordKeyBytes != nil {
			e.RecordKey, e.RecordKeyBytes = string(e.RecordKeyBytes), nil
		}
		if e.Pipeline == "" || e.RecordKey == "" || (!e.Abandon && e.PayloadHash == "") {
			continue
		}
		entries = append(entries, located{e, min(off, int64(len(data)))})
	}
	return gen, entries
}

// applyEntries writes lines into write_intents, in order.
func applyEntries(ctx context.Context, tx *sql.Tx, es []journalEntry) error {
	if len(es) == 0 {
		return nil
	}
	ins, err := tx.PrepareContext(ctx, insertIntent)
	if err != nil {
		return err
	}
	defer ins.Close()
	del, err := tx.PrepareContext(ctx, deleteIntent)
	if err != nil {
		return err
	}
	defer del.Close()
	for _, e := range es {
		if e.Abandon {
			_, err = del.ExecContext(ctx, e.Pipeline, e.RecordKey)
		} else {
			_, err = ins.ExecContext(ctx, e.Pipeline, e.RecordKey, e.PayloadHash, e.RunID, e.At)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

const deleteIntent = `DELETE FROM write_intents WHERE pipeline = ? AND record_key = ?`

// restart empties the journal file and gives it a new header, so the
// offset recorded for the old one matches nothing in it.
//
// The file is written at the offsets the journal tracks, not opened
// O_APPEND: Windows opens an O_APPEND file without the write access that
// Truncate needs, so every Open failed there.
func (j *journal) restart() error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	gen := hex.EncodeToString(b[:])
	if j.f == nil {
		f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		j.f = f
	}
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	j.gen, j.size, j.torn = "", 0, false
	head := []byte(`{"journal":"` + gen + `"}` + "\n")
	n, err := j.f.WriteAt(head, 0)
	j.size = int64(n)
	if err != nil {
		// Lines go on after what was written: the file's header is
		// then "", as is the one a fold records.
		j.torn = n > 0
		return err
	}
	j.gen = gen
	return nil
}

// append writes the lines in one write(2); they are recorded once it
// returns.
func (j *journal) append(entries []journalEntry) error {
	buf, err := journalLines(entries)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("intent journal is closed")
	}
	if j.torn {
		// End the piece a failed write left, so it does not run into
		// this call's first line and hide it.
		buf = append([]byte{'\n'}, buf...)
	}
	n, err := j.f.WriteAt(buf, j.size)
	j.size += int64(n)
	j.torn = err != nil && n > 0
	if err != nil {
		// A line cut short is skipped when the journal is read; the
		// creates of this call are not sent.
		return err
	}
	j.pending = append(j.pending, entries...)
	return nil
}

// foldInto writes the journal's unfolded lines into write_intents in tx,
// with the offset they end at. done(committed) must follow the
// transaction's end: it forgets the folded lines once they are committed.
func (j *journal) foldInto(ctx context.Context, tx *sql.Tx) (done func(committed bool), err error) {
	j.foldMu.Lock()
	j.mu.Lock()
	n, gen, size := len(j.pending), j.gen, j.size
	folding := j.pending[:n:n]
	j.mu.Unlock()
	if n == 0 {
		j.foldMu.Unlock()
		return func(bool) {}, nil
	}
	if err := applyEntries(ctx, tx, folding); err != nil {
		j.foldMu.Unlock()
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO intent_journal (id, gen, folded) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET gen = excluded.gen, folded = excluded.folded`, gen, size)
	if err != nil {
		j.foldMu.Unlock()
		return nil, err
	}
	return func(committed bool) {
		defer j.foldMu.Unlock()
		if !committed {
			return
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		j.pending = append([]journalEntry(nil), j.pending[n:]...)
		switch {
		case j.f == nil:
		case len(j.pending) == 0:
			// Best effort: a journal left long is folded from the
			// recorded offset on.
			_ = j.restart()
		case j.size > journalCompactAt:
			// Creates of other pages kept arriving at every fold (a
			// daemon's pipelines side by side): the file would only
			// grow.
			_ = j.compact()
		}
	}, nil
}

// journalCompactAt is the size past which a fold that leaves lines
// unfolded rewrites the journal with only those lines.
var journalCompactAt int64 = 1 << 20

// compact replaces the journal with a new one (a new header, so the
// offset recorded for the old one matches nothing) holding only the
// unfolded lines: written beside it, then renamed over it, so a crash
// leaves one or the other whole.
func (j *journal) compact() error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	gen := hex.EncodeToString(b[:])
	lines, err := journalLines(j.pending)
	if err != nil {
		return err
	}
	buf := append([]byte(`{"journal":"`+gen+`"}`+"\n"), lines...)
	tmp := j.path + ".tmp"
	if err := os.WriteFile(tmp, buf, 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	// Windows renames no file that is open.
	j.f.Close()
	j.f = nil
	renameErr := os.Rename(tmp, j.path)
	if renameErr != nil {
		os.Remove(tmp)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY, 0o600)
	if err != nil {
		// Appends now fail, and so do the creates they would record.
		return errors.Join(renameErr, err)
	}
	j.f = f
	if renameErr != nil {
		// The old journal is still the file, and j still describes it.
		return renameErr
	}
	j.gen, j.size, j.torn = gen, int64(len(buf)), false
	return nil
}

// intentJournal is the journal a store's reads of intents overlay: its
// writer's, or what a read-only open found unfolded (nil when none).
func (s *Store) intentJournal() *journal {
	if s.journal != nil {
		return s.journal
	}
	return s.readJournal
}

// overlay applies the unfolded lines of pipeline to intents (record key →
// payload hash) for the keys want accepts. The caller holds foldMu shared
// from before its read of write_intents.
func (j *journal) overlay(pipeline string, want func(key string) bool, intents map[string]string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range j.pending {
		if e.Pipeline != pipeline || !want(e.RecordKey) {
			continue
		}
		if e.Abandon {
			delete(intents, e.RecordKey)
		} else {
			intents[e.RecordKey] = e.PayloadHash
		}
	}
}

// journalEntries are the lines recording intents.
func journalEntries(runID int64, stamp string, intents []engine.Intent) []journalEntry {
	out := make([]journalEntry, len(intents))
	for i, in := range intents {
		out[i] = journalEntry{Pipeline: in.Pipeline, RecordKey: in.RecordKey, PayloadHash: in.PayloadHash, RunID: runID, At: stamp}
	}
	return out
}

// inFoldTx is inTx for a page commit: the journal's unfolded intents are
// written into write_intents first, in the same transaction, so the
// page's outcomes clear them as they clear intents already there.
func (s *Store) inFoldTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.journal == nil {
		return s.inTx(ctx, fn)
	}
	var done func(committed bool)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		d, err := s.journal.foldInto(ctx, tx)
		if err != nil {
			return err
		}
		done = d
		return fn(tx)
	})
	if done != nil {
		done(err == nil)
	}
	return err
}

// isItemOf reports whether key is one of keys or an item of one (k#item),
// as itemsOf selects them.
func isItemOf(keys map[string]bool) func(string) bool {
	return func(key string) bool {
		if keys[key] {
			return true
		}
		for i := 0; i < len(key); i++ {
			if key[i] == '#' && keys[key[:i]] {
				return true
			}
		}
		return false
	}
}
