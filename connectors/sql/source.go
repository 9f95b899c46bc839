package sql

import (
	"context"
	"fmt"

	"casesync/engine"
	"casesync/engine/mapping"
)

// source lists a pipeline's records with its select, page by page.
type source struct {
	p    *Pool
	pl   *engine.Pipeline
	spec *engine.SQLSourceSpec
}

// List runs the select with $cursor and $now bound, page_size rows at a
// time (LIMIT/OFFSET on the select's own ORDER BY), and hands each page
// on before reading the next.
func (s *source) List(ctx context.Context, v *mapping.Vars, fn func(*engine.Page) error) error {
	name := s.pl.Source.Connector
	c, err := s.p.open(ctx, name)
	if err != nil {
		return err
	}
	stmt, args, err := c.d.bindNamed(s.spec.Select, map[string]any{"cursor": v.Cursor, "now": v.Now}, 1)
	if err != nil {
		return &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("%s/source: %v", s.pl.Name, err)}
	}
	per := max(s.spec.PageSize, 1)
	stmt = fmt.Sprintf("%s LIMIT %s OFFSET %s", stmt, c.d.param(len(args)+1), c.d.param(len(args)+2))
	for page := 1; ; page++ {
		rows, err := c.db.QueryContext(ctx, stmt, append(args, per, (page-1)*per)...)
		if err != nil {
			return dbError(name, s.pl.Name+"/source", err)
		}
		recs, err := scanRows(rows)
		if err != nil {
			return dbError(name, s.pl.Name+"/source", err)
		}
		if len(recs) > 0 {
			if err := fn(&engine.Page{Number: page, Records: recs, Total: -1}); err != nil {
				return err
			}
		}
		if len(recs) < per {
			return nil
		}
	}
}

// Get: a sql source re-reads by listing again from the failed record's
// cursor (engine check allows no source.get on it).
func (s *source) Get(context.Context, *mapping.Vars) (any, error) {
	return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("%s: a sql source re-reads records by listing, not one by one", s.pl.Name)}
}
