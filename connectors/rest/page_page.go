package rest

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"casesync/engine"
)

// newPagePaginator pages with page/per query parameters, optionally
// checking a total read from each response.
func newPagePaginator(p *engine.Pagination) (paginator, error) {
	spec := p.Spec.Page
	if spec == nil {
		return paginator{}, errors.New("missing settings")
	}
	s := *spec
	if s.PageParam == "" {
		s.PageParam = "page"
	}
	if s.PerParam == "" {
		s.PerParam = "per"
	}
	if s.Per <= 0 {
		s.Per = 100
	}
	total, err := compiled(p.Total, s.Total)
	if err != nil {
		return paginator{}, fmt.Errorf("total: %w", err)
	}
	return paginator{
		maxPages: maxPagesOr(s.MaxPages, 100000),
		start: func() pager {
			return &pagePager{page: s.PageParam, per: s.PerParam, start: s.Start, counted: counted{size: s.Per, total: total}}
		},
	}, nil
}

type pagePager struct {
	page, per string
	start     int
	counted
}

func (p *pagePager) prepare(o *outbound, n int) error {
	q := o.url.Query()
	q.Set(p.page, strconv.Itoa(p.start+n-1))
	q.Set(p.per, strconv.Itoa(p.size))
	o.url.RawQuery = q.Encode()
	return nil
}

func (p *pagePager) next(ctx context.Context, _ *outbound, resp *Response, got int) (bool, int, error) {
	return p.counted.next(ctx, resp, got)
}
