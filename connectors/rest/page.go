package rest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"casesync/engine"
	"casesync/engine/mapping"
)

// pager walks one listing. A new one is made per List call.
type pager interface {
	// prepare sets up the request for page n (1-based) on o, a fresh copy
	// of the listing's first request.
	prepare(o *outbound, n int) error
	// next reads page n's response, with got records, and reports whether
	// another page follows and the server's announced total (-1: none).
	// A listing that contradicts itself is an error, never a short result.
	next(ctx context.Context, o *outbound, resp *Response, got int) (more bool, total int, err error)
}

// paginator starts listings of one pagination kind; it is built once per
// kind and spec and holds only compiled, read-only settings.
type paginator struct {
	start    func() pager
	maxPages int
}

// paginators maps the schema's pagination discriminator to a constructor.
// Each constructor validates its spec eagerly.
var paginators = map[string]func(p *engine.Pagination) (paginator, error){
	"page":        newPagePaginator,
	"offset":      newOffsetPaginator,
	"next_link":   newNextLinkPaginator,
	"body_cursor": newBodyCursorPaginator,
	"none":        newNonePaginator,
}

// pagerFor builds the paginator for p (nil: a single page).
func pagerFor(p *engine.Pagination) (paginator, error) {
	if p == nil {
		return newNonePaginator(nil)
	}
	kind := p.Kind
	if kind == "" {
		var err error
		if kind, err = kindOf(p.Spec); err != nil {
			return paginator{}, err
		}
		if kind == "" {
			kind = "none"
		}
	}
	newP, ok := paginators[kind]
	if !ok {
		return paginator{}, fmt.Errorf("unknown pagination kind %q", kind)
	}
	pg, err := newP(p)
	if err != nil {
		return paginator{}, fmt.Errorf("%s: %w", kind, err)
	}
	return pg, nil
}

// MaxPagesError reports a listing that still had pages when it reached
// the spec's max_pages. The pages already streamed were real, but the
// listing is incomplete, so it fails rather than end as if complete.
type MaxPagesError struct {
	Connector string
	MaxPages  int
}

func (e *MaxPagesError) Error() string {
	return fmt.Sprintf("list %s: more pages after max_pages %d", e.Connector, e.MaxPages)
}

// FailureClass makes the cap a configuration problem: raise max_pages.
func (e *MaxPagesError) FailureClass() engine.Class { return engine.ClassConfig }

// ListingError is a listing that contradicts itself: the server's total
// disagrees with the records it sent, or a cursor does not advance.
type ListingError struct {
	Connector string
	Page      int
	Msg       string
}

func (e *ListingError) Error() string {
	return fmt.Sprintf("list %s: page %d: %s", e.Connector, e.Page, e.Msg)
}

// FailureClass makes an inconsistent listing retryable: a later run may
// see a consistent one, and nothing from it is taken as complete.
func (e *ListingError) FailureClass() engine.Class { return engine.ClassRetryable }

var errInconsistent = errors.New("inconsistent listing")

// List streams a listing page by page: fn sees each page's records as soon
// as that page arrives, and the listing never sits in memory. Page requests
// are reads and are retried as idempotent whatever their method.
func (c *Client) List(ctx context.Context, call *Call, fn func(*engine.Page) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	spec := call.Pagination
	if spec == nil {
		spec = c.conn.Pagination
	}
	pg, err := pagerFor(spec)
	if err != nil {
		return fmt.Errorf("connector %s: pagination: %w", c.name, err)
	}
	first, err := c.outbound(call)
	if err != nil {
		return err
	}
	first.idempotent = true
	p := pg.start()
	for n := 1; ; n++ {
		o := first.clone()
		if err := p.prepare(o, n); err != nil {
			return &ListingError{Connector: c.name, Page: n, Msg: c.red.String(err.Error())}
		}
		sent := time.Now()
		resp, err := c.send(ctx, o)
		if err != nil {
			return fmt.Errorf("fetch page %d of %s: %w", n, c.name, err)
		}
		if c.observe != nil {
			c.observe(c.name, "page", time.Since(sent))
		}
		recs, err := records(ctx, call.Records, resp.Body)
		if err != nil {
			return &engine.RemoteError{Class: engine.ClassPermanent, Status: resp.Status, Method: o.method, Path: c.path(o),
				Msg: c.red.String("records: " + err.Error())}
		}
		more, total, err := p.next(ctx, o, resp, len(recs))
		if err != nil {
			return &ListingError{Connector: c.name, Page: n, Msg: c.red.String(err.Error())}
		}
		resp = nil // one page in memory: fn may hold its records, we don't
		if err := fn(&engine.Page{Number: n, Records: recs, Total: total}); err != nil {
			return err
		}
		if !more {
			return nil
		}
		if n >= pg.maxPages {
			return &MaxPagesError{Connector: c.name, MaxPages: pg.maxPages}
		}
	}
}

// records extracts a page's records: with no program, an array body is the
// records, no body is none, and any other body is one record.
func records(ctx context.Context, f RecordsFunc, body any) ([]any, error) {
	if f != nil {
		return f(ctx, body)
	}
	switch b := body.(type) {
	case nil:
		return nil, nil
	case []any:
		return b, nil
	}
	return []any{body}, nil
}

// counted is the stop rule of page and offset listings: stop on a short or
// empty page, or once the announced total is reached, and fail when the
// records received disagree with that total.
type counted struct {
	size  int
	total *mapping.JQ
	seen  int
}

func (k *counted) next(ctx context.Context, resp *Response, got int) (bool, int, error) {
	total := -1
	if k.total != nil {
		v, err := k.total.One(ctx, resp.Body, nil)
		if err != nil {
			return false, -1, fmt.Errorf("total: %w", err)
		}
		if v != nil {
			n, ok := count(v)
			if !ok {
				return false, -1, fmt.Errorf("total: want a count, got %T", v)
			}
			total = n
		}
	}
	k.seen += got
	switch {
	case total >= 0 && k.seen > total:
		return false, total, fmt.Errorf("%w: received %d records, more than the announced total %d", errInconsistent, k.seen, total)
	case got < k.size:
		if total >= 0 && k.seen < total {
			return false, total, fmt.Errorf("%w: pages ran out after %d records of an announced %d", errInconsistent, k.seen, total)
		}
		return false, total, nil
	case total >= 0 && k.seen == total:
		return false, total, nil
	}
	return true, total, nil
}

// count reads a non-negative whole number from a jq result (gojq yields
// int for computed integers and float64 for decoded ones).
func count(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, x >= 0
	case float64:
		if x < 0 || x != math.Trunc(x) || x > math.MaxInt32 {
			return 0, false
		}
		return int(x), true
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil && n >= 0
	}
	return 0, false
}

func maxPagesOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}
