package rest

import (
	"context"

	"casesync/engine"
)

// newNonePaginator lists a single page.
func newNonePaginator(*engine.Pagination) (paginator, error) {
	return paginator{maxPages: 1, start: func() pager { return nonePager{} }}, nil
}

type nonePager struct{}

func (nonePager) prepare(*outbound, int) error { return nil }

func (nonePager) next(context.Context, *outbound, *Response, int) (bool, int, error) {
	return false, -1, nil
}
