package mapping

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Env is the typed environment of every expr program. Unknown names and
// wrong types fail at compile time; record contents are dynamic maps.
type Env struct {
	Record   map[string]any `expr:"record"`
	Payload  map[string]any `expr:"payload"`
	Vars     map[string]any `expr:"vars"`
	Cursor   string         `expr:"cursor"`
	Now      time.Time      `expr:"now"`
	TargetID string         `expr:"target_id"`
	Action   string         `expr:"action"`
	// Delivery is the webhook delivery the record came in (null outside
	// an inbox): id, event, query, headers.
	Delivery map[string]any `expr:"delivery"`
	// Outcome is the item's outcome, for after-steps: action, reason,
	// class.
	Outcome map[string]any `expr:"outcome"`
	// Lookup and RLookup are lookup() and rlookup(): Run binds them to the
	// program's lookups and the run's Runtime, where misses are counted.
	Lookup  func(name string, key any) (any, error) `expr:"lookup"`
	RLookup func(name string, key any) (any, error) `expr:"rlookup"`

	rt *Runtime
}

// Expr is a compiled expr program, safe for concurrent use.
type Expr struct {
	src  string
	prog *vm.Program
	// reg is set when the program calls lookup or rlookup.
	reg  *Registry
	pool sync.Pool // *vm.VM: reusing a VM keeps its stack
}

// ExprKind fixes the result type a program must have.
type ExprKind int

// The result types a spec position may require.
const (
	ExprAny ExprKind = iota
	ExprBool
)

// CompileExpr compiles src against Env with reg's lookups as functions.
func CompileExpr(src string, kind ExprKind, reg *Registry) (*Expr, error) {
	opts := []expr.Option{expr.Env(Env{}), expr.Timezone("UTC")}
	opts = append(opts, exprFunctions()...)
	if kind == ExprBool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &SyntaxError{Lang: "expr", Line: fe.Line, Col: fe.Column + 1, Msg: fe.Message}
		}
		return nil, &SyntaxError{Lang: "expr", Msg: err.Error()}
	}
	e := &Expr{src: src, prog: prog}
	if names := lookupNames(src); len(names) > 0 {
		for _, name := range names {
			if !reg.Has(name) {
				return nil, &UnknownLookupError{Name: name}
			}
		}
		e.reg = reg
	}
	return e, nil
}

// String returns the program text.
func (e *Expr) String() string {
	if e == nil {
		return ""
	}
	return e.src
}

// Run evaluates the program.
func (e *Expr) Run(env *Env) (any, error) {
	m, _ := e.pool.Get().(*vm.VM)
	if m == nil {
		m = &vm.VM{}
	}
	run := *env
	if e.reg != nil {
		run.Lookup, run.RLookup = e.lookup(env.rt, false), e.lookup(env.rt, true)
	}
	out, err := m.Run(e.prog, run)
	e.pool.Put(m)
	if err != nil {
		return nil, cleanExprError(err)
	}
	return out, nil
}

// Bool evaluates a program compiled with ExprBool.
func (e *Expr) Bool(env *Env) (bool, error) {
	v, err := e.Run(env)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("expr: result is %T, not bool", v)
	}
	return b, nil
}

// cleanExprError keeps the message and drops the snippet, which quotes the
// program and sometimes the value.
func cleanExprError(err error) error {
	var miss *MissError
	if errors.As(err, &miss) {
		return miss
	}
	var skip *SkipError
	if errors.As(err, &skip) {
		return skip
	}
	if strings.Contains(err.Error(), "memory budget exceeded") {
		// expr's own allocation budget (its VM counts what each builtin
		// builds): a range or repeat too large for a mapping.
		return &EvalError{Reason: ReasonEvalTooLarge, Lang: "expr", Limit: "expr's memory budget"}
	}
	var fe *file.Error
	if errors.As(err, &fe) {
		return fmt.Errorf("expr: %s", fe.Message)
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i > 0 {
		msg = msg[:i]
	}
	return errors.New("expr: " + msg)
}

// lookup is lookup() (or rlookup()) for one run.
func (e *Expr) lookup(rt *Runtime, reverse bool) func(string, any) (any, error) {
	return func(name string, key any) (any, error) {
		l, ok := e.reg.Get(name)
		if !ok {
			return nil, &UnknownLookupError{Name: name}
		}
		ctx := context.Background()
		if rt != nil && rt.Ctx != nil {
			ctx = rt.Ctx
		}
		return l.Get(ctx, rt, key, reverse)
	}
}

func exprFunctions() []expr.Option {
	return []expr.Option{
		expr.Function("blank", func(params ...any) (any, error) { return isBlank(params[0]), nil }, new(func(any) bool)),
	}
}
