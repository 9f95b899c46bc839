package wire

import (
	"context"
	"errors"
	"fmt"

	"casesync/connectors/rest"
	sqlconn "casesync/connectors/sql"
	"casesync/engine"
)

// kinds are the connector kinds other than HTTP: each builds the ports of
// its connectors. A new kind of connector is one package under
// connectors/ and one line here.
var kinds = map[string]func(plan *engine.Plan, secrets engine.Secrets) kindPorts{
	"sql": func(plan *engine.Plan, secrets engine.Secrets) kindPorts { return sqlconn.NewPool(plan, secrets) },
}

// kindPorts is what a connector kind provides: the engine's ports, and a
// Close for what it opened.
type kindPorts interface {
	engine.Connectors
	Close() error
}

// Conns routes each port to the connector kind it names: HTTP connectors
// to the REST pool, the others to their kind's ports.
type Conns struct {
	REST  *rest.Pool
	plan  *engine.Plan
	other map[string]kindPorts // by kind
}

var (
	_ engine.Connectors  = (*Conns)(nil)
	_ engine.TableLoader = (*Conns)(nil)
)

func (c *Conns) route(connector string) (engine.Connectors, error) {
	cn, ok := c.plan.Connectors[connector]
	if !ok {
		return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("no connector %q", connector)}
	}
	if k, ok := c.other[cn.Kind]; ok {
		return k, nil
	}
	return c.REST, nil
}

// Source is pipeline p's source, on its source connector's kind.
func (c *Conns) Source(p *engine.Pipeline) (engine.Source, error) {
	k, err := c.route(p.Source.Connector)
	if err != nil {
		return nil, err
	}
	return k.Source(p)
}

// Target is pipeline p's target, on its upsert connector's kind.
func (c *Conns) Target(p *engine.Pipeline) (engine.Target, error) {
	k, err := c.route(p.Upsert.Connector)
	if err != nil {
		return nil, err
	}
	return k.Target(p)
}

// Caller is the named connector's caller.
func (c *Conns) Caller(name string) (engine.Caller, error) {
	k, err := c.route(name)
	if err != nil {
		return nil, err
	}
	return k.Caller(name)
}

// LoadTable loads a table lookup from its connector's kind.
func (c *Conns) LoadTable(ctx context.Context, l *engine.APILookup) (map[string]any, error) {
	k, err := c.route(l.Connector)
	if err != nil {
		return nil, err
	}
	tl, ok := k.(engine.TableLoader)
	if !ok {
		return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("connector %s cannot load a lookup table", l.Connector)}
	}
	return tl.LoadTable(ctx, l)
}

// Close closes every kind's connectors.
func (c *Conns) Close() error {
	var errs []error
	if c.REST != nil {
		errs = append(errs, c.REST.Close())
	}
	for _, k := range c.other {
		errs = append(errs, k.Close())
	}
	return errors.Join(errs...)
}
