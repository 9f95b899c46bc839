package engine

import (
	"context"
	"errors"
	"testing"

	"casesync/engine/mapping"
)

// pagedSource lists n records, per to a page, and counts the pages it
// was asked for.
type pagedSource struct {
	n, per int
	asked  int
}

func (s *pagedSource) List(ctx context.Context, _ *mapping.Vars, fn func(*Page) error) error {
	for start, num := 0, 1; start < s.n; start, num = start+s.per, num+1 {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.asked++
		recs := make([]any, 0, s.per)
		for i := start; i < min(start+s.per, s.n); i++ {
			recs = append(recs, i)
		}
		if err := fn(&Page{Number: num, Records: recs, Total: s.n}); err != nil {
			return err
		}
	}
	return nil
}

func (s *pagedSource) Get(context.Context, *mapping.Vars) (any, error) { return nil, ErrNotFound }

func TestListAhead(t *testing.T) {
	errFn := errors.New("run failed")
	tests := []struct {
		name      string
		n, limit  int
		failAt    int // fn fails on this page (0: never)
		wantErr   error
		wantPages []int // records per page fn saw, in order
		maxAsked  int   // pages the source may be asked for
	}{
		{name: "whole listing in order", n: 350, wantPages: []int{100, 100, 100, 50}, maxAsked: 4},
		{name: "limit cuts a page and asks for no more", n: 350, limit: 150, wantPages: []int{100, 50}, maxAsked: 2},
		{name: "limit on a page boundary", n: 350, limit: 200, wantPages: []int{100, 100}, maxAsked: 2},
		{name: "fn's error stops it one page ahead at most", n: 1000, failAt: 2, wantErr: errFn, wantPages: []int{100, 100}, maxAsked: 3},
		{name: "empty listing", n: 0, maxAsked: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &pagedSource{n: tc.n, per: 100}
			var got []int
			next := 0
			err := listAhead(context.Background(), src, &mapping.Vars{}, tc.limit, func(pg *Page) error {
				got = append(got, len(pg.Records))
				if len(pg.Records) > 0 && pg.Records[0] != next {
					t.Errorf("page %d starts at record %v, want %d", pg.Number, pg.Records[0], next)
				}
				next += len(pg.Records)
				if pg.Number == tc.failAt {
					return errFn
				}
				return nil
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
			if len(got) != len(tc.wantPages) {
				t.Fatalf("pages %v, want %v", got, tc.wantPages)
			}
			for i := range got {
				if got[i] != tc.wantPages[i] {
					t.Errorf("pages %v, want %v", got, tc.wantPages)
				}
			}
			// listAhead returns only once the listing has: asked is final.
			if src.asked > tc.maxAsked {
				t.Errorf("source asked for %d pages, want at most %d", src.asked, tc.maxAsked)
			}
		})
	}
}

// TestListAhead_SourceError: the listing's own failure is returned after
// the pages before it were processed.
func TestListAhead_SourceError(t *testing.T) {
	errSrc := errors.New("page 3 refused")
	seen := 0
	err := listAhead(context.Background(), sourceFunc(func(ctx context.Context, fn func(*Page) error) error {
		for n := 1; n <= 2; n++ {
			if err := fn(&Page{Number: n, Records: []any{n}}); err != nil {
				return err
			}
		}
		return errSrc
	}), &mapping.Vars{}, 0, func(pg *Page) error {
		seen++
		return nil
	})
	if !errors.Is(err, errSrc) || seen != 2 {
		t.Errorf("err %v after %d pages, want %v after 2", err, seen, errSrc)
	}
}

type sourceFunc func(ctx context.Context, fn func(*Page) error) error

func (f sourceFunc) List(ctx context.Context, _ *mapping.Vars, fn func(*Page) error) error {
	return f(ctx, fn)
}

func (f sourceFunc) Get(context.Context, *mapping.Vars) (any, error) { return nil, ErrNotFound }
