package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"casesync/engine/mapping"
)

// ErrEmptyKey is a payload whose upsert key is empty: a target that
// upserts by key would merge every such record into one row, so the write
// is refused (reason empty_key).
var ErrEmptyKey = errors.New("upsert key is empty")

// leftHash is the payload hash recorded for a row removed (or flagged)
// because its source record left the source set: no payload hashes to it,
// so the record is written again if it comes back.
const leftHash = "left_set"

// pageBatch holds the writes queued for a BatchTarget since the last page
// commit (see BatchTarget). The batch itself takes concurrent writes; mu
// guards which batch is current and the keys queued in it.
type pageBatch struct {
	bt BatchTarget

	mu   sync.Mutex
	b    Batch
	keys map[string]bool // record keys of the queued writes
}

// current returns the page's batch, starting one when there is none.
func (pb *pageBatch) current() Batch {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if pb.b == nil {
		pb.b, pb.keys = pb.bt.Batch(), map[string]bool{}
	}
	return pb.b
}

func (pb *pageBatch) queued(key string) {
	pb.mu.Lock()
	pb.keys[key] = true
	pb.mu.Unlock()
}

func (pb *pageBatch) upsert(key string, payload map[string]any, v *mapping.Vars) error {
	if err := pb.current().Upsert(key, payload, v); err != nil {
		return err
	}
	pb.queued(key)
	return nil
}

func (pb *pageBatch) remove(key, targetID string) error {
	if err := pb.current().Remove(key, targetID); err != nil {
		return err
	}
	pb.queued(key)
	return nil
}

// take hands over the queued writes, as a batch of their own, and starts
// the next page's afresh: a page's writes can then be flushed while the
// next page is decided. Take is called between pages, when no record is
// being decided.
func (pb *pageBatch) take() *pageBatch {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	t := &pageBatch{bt: pb.bt, b: pb.b, keys: pb.keys}
	pb.b, pb.keys = nil, nil
	return t
}

// flush applies the queued writes. It returns the keys of the writes that
// failed, each with its error (every key when the whole flush failed).
// Flush is called between pages, when no record is being decided, or on
// a batch take handed over.
func (pb *pageBatch) flush(ctx context.Context) (sent bool, failed map[string]error) {
	pb.mu.Lock()
	b, keys := pb.b, pb.keys
	pb.b, pb.keys = nil, nil
	pb.mu.Unlock()
	if b == nil || len(keys) == 0 {
		return false, nil
	}
	err := b.Flush(ctx)
	if err == nil {
		return true, nil
	}
	failed = map[string]error{}
	var re *RowErrors
	if errors.As(err, &re) {
		for k, rerr := range re.Failed {
			if keys[k] {
				failed[k] = rerr
			}
		}
		return true, failed
	}
	for k := range keys {
		failed[k] = err
	}
	return true, failed
}

// queue queues a located payload's write in the page's batch: the write
// happens when the page is flushed, before its outcomes commit.
func (wr *writer) queue(d Decision, f found, payload map[string]any, v *mapping.Vars) (Decision, Written) {
	ru, key := wr.ru, d.RecordKey
	if err := wr.batch.upsert(key, payload, v); err != nil {
		return ru.failDecision(key, reasonFor(err), ClassOf(err), err), Written{}
	}
	ru.countWrite(ru.p.Upsert.Connector)
	d.Reason = ""
	if d.TargetID == "" {
		// An upsert by key: the key is the row's id.
		d.TargetID = f.bkey
	}
	return withHash(d, f.hash, nil), Written{}
}

// flush applies the page's batch, if there is one, before outs commit.
// When the flush fails, nothing of the page reached the target: every
// outcome of a queued write becomes a failure with the flush's reason and
// class, and its record's version is forgotten so the next run writes it.
func (wr *writer) flush(ctx context.Context, outs []Outcome) {
	wr.flushBatch(ctx, wr.batch, outs)
}

// flushBatch is flush of pb: the page's batch, or one taken from it.
func (wr *writer) flushBatch(ctx context.Context, pb *pageBatch, outs []Outcome) {
	if pb == nil {
		return
	}
	// A signal while the page was decided must not cost the page its
	// writes: the flush is one bounded transaction.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	sent, failed := pb.flush(fctx)
	cancel()
	if sent {
		wr.ru.r.crash.hit(CrashAfterWrite)
	}
	if len(failed) == 0 {
		return
	}
	ru := wr.ru
	failedSources := map[string]bool{}
	for i := range outs {
		o := &outs[i]
		err, ok := failed[o.RecordKey]
		if !ok || (o.Action != ActionCreated && o.Action != ActionUpdated) {
			continue
		}
		d := ru.failDecision(o.RecordKey, reasonFor(err), ClassOf(err), err)
		ru.mu.Lock()
		ru.counts.unAdd(o.Action)
		ru.counts.Add(ActionFailed)
		ru.reasons[d.Reason]++
		if ru.writes != nil && ru.writes[ru.p.Upsert.Connector] > 0 {
			ru.writes[ru.p.Upsert.Connector]--
		}
		ru.mu.Unlock()
		ru.r.log.Warn("record failed", "pipeline", ru.p.Name, "record", o.RecordKey, "reason", d.Reason, "class", string(d.Class), "error", d.Error)
		*o = Outcome{RecordKey: o.RecordKey, Action: ActionFailed, Reason: d.Reason, Error: d.Error, Class: d.Class,
			CursorValue: o.CursorValue, SourceKey: o.SourceKey, At: o.At}
		failedSources[o.SourceKey] = true
	}
	for i := range outs {
		if failedSources[outs[i].SourceKey] {
			outs[i].SourceVersion = ""
		}
	}
}

// unAdd takes back one outcome counted by Add.
func (c *Counts) unAdd(a Action) {
	switch a {
	case ActionCreated:
		c.Created--
	case ActionUpdated:
		c.Updated--
	}
}

// left removes (through the batch) the rows a source record had written
// and no longer has: every row of the record when the filters reject it
// (keep nil), or its fanned-out items that are not in keep. Each removal
// is an updated outcome with reason left_set; a row already removed is
// left alone. Nothing happens unless the upsert declares the rule and the
// target writes in batches.
func (wr *writer) left(srcKey string, keep map[string]bool, kn *Known, cursor string) []Outcome {
	ru := wr.ru
	if wr.batch == nil || !ru.p.Upsert.RemoveLeft || kn == nil {
		return nil
	}
	var outs []Outcome
	for _, k := range wr.rowsOf(kn, srcKey) {
		rs := kn.Records[k]
		if keep[k] || rs.TargetID == "" || rs.PayloadHash == leftHash {
			continue
		}
		if err := wr.batch.remove(k, rs.TargetID); err != nil {
			outs = append(outs, ru.fail(k, cursor, "remove", ClassOf(err), fmt.Errorf("remove a row that left the source set: %w", err)))
			continue
		}
		outs = append(outs, ru.outcome(Decision{RecordKey: k, Action: ActionUpdated, Reason: "left_set", TargetID: rs.TargetID, PayloadHash: leftHash}, cursor, nil))
	}
	return outs
}

// rowsOf lists the record keys the state knows for source key srcKey: the
// key itself and its fanned-out items (key#item). The index is built once
// per page's Known.
func (wr *writer) rowsOf(kn *Known, srcKey string) []string {
	wr.rowsMu.Lock()
	defer wr.rowsMu.Unlock()
	if wr.rowsFor != kn {
		wr.rowsFor, wr.rows = kn, map[string][]string{}
		for k := range kn.Records {
			src, _, _ := strings.Cut(k, "#")
			wr.rows[src] = append(wr.rows[src], k)
		}
	}
	return wr.rows[srcKey]
}
