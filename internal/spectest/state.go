package spectest

import (
	"context"
	"strings"
	"sync"
	"time"

	"casesync/engine"
)

// memState is the state port in memory: what one test's run remembers
// from one record to the next (last writes, links, create intents), and
// the outcomes of the record being run.
type memState struct {
	mu      sync.Mutex
	runs    int64
	records map[string]engine.RecordState
	links   map[string]string
	intents map[string]string
	// outcomes are the outcomes committed since the last take.
	outcomes []engine.Outcome
}

func newMemState() *memState {
	return &memState{records: map[string]engine.RecordState{}, links: map[string]string{}, intents: map[string]string{}}
}

var _ engine.RunState = (*memState)(nil)

func (s *memState) StartRun(ctx context.Context, pipeline, specHash, trigger string, at time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	return s.runs, nil
}

func (s *memState) FinishRun(ctx context.Context, runID int64, status string, counts engine.Counts, errMsg string, at time.Time) error {
	return nil
}

func (s *memState) Cursor(ctx context.Context, pipeline string) (string, bool, error) {
	return "", false, nil
}

func (s *memState) DueRetries(ctx context.Context, pipeline string, now time.Time, limit int) ([]engine.RetryItem, error) {
	return nil, nil
}

func (s *memState) Known(ctx context.Context, q engine.KnownQuery) (engine.Known, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kn := engine.Known{Records: map[string]engine.RecordState{}, Links: map[string]string{}, Versions: map[string]string{}, Intents: map[string]string{}}
	for _, k := range q.SourceKeys {
		for rk, st := range s.records {
			if rk == k || strings.HasPrefix(rk, k+"#") {
				kn.Records[rk] = st
			}
		}
		for rk, id := range s.links {
			if rk == k || strings.HasPrefix(rk, k+"#") {
				kn.Links[rk] = id
			}
		}
		for rk, h := range s.intents {
			if rk == k || strings.HasPrefix(rk, k+"#") {
				kn.Intents[rk] = h
			}
		}
	}
	return kn, nil
}

func (s *memState) BeginCreates(ctx context.Context, runID int64, at time.Time, intents []engine.Intent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range intents {
		s.intents[in.RecordKey] = in.PayloadHash
	}
	return nil
}

func (s *memState) AbandonCreate(ctx context.Context, pipeline, recordKey string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.intents, recordKey)
	return nil
}

func (s *memState) CommitPage(ctx context.Context, c engine.PageCommit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range c.Outcomes {
		s.outcomes = append(s.outcomes, o)
		if o.Link != nil {
			s.links[o.Link.IDA] = o.Link.IDB
		}
		switch o.Action {
		case engine.ActionCreated, engine.ActionUpdated, engine.ActionUnchanged:
			st := s.records[o.RecordKey]
			if o.PayloadHash != "" {
				st.PayloadHash = o.PayloadHash
			}
			if o.TargetID != "" {
				st.TargetID = o.TargetID
			}
			st.Action, st.UpdatedAt = o.Action, c.Now
			s.records[o.RecordKey] = st
			delete(s.intents, o.RecordKey)
		case engine.ActionFailed:
			if !o.Unconfirmed {
				delete(s.intents, o.RecordKey)
			}
		default:
			delete(s.intents, o.RecordKey)
		}
	}
	return nil
}

// take returns the outcomes committed since the last take.
func (s *memState) take() []engine.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.outcomes
	s.outcomes = nil
	return out
}
