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
}

// Expr is a compiled expr program, safe for concurrent use.
type Expr struct {
	src  string
	prog *vm.Program
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
	opts = append(opts, exprFunctions(reg)...)
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
	if reg != nil {
		for _, name := range lookupNames(src) {
			if !reg.Has(name) {
				return nil, &UnknownLookupError{Name: name}
			}
		}
	}
	return &Expr{src: src, prog: prog}, nil
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
	out, err := m.Run(e.prog, *env)
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

func exprFunctions(reg *Registry) []expr.Option {
	lookup := func(reverse bool) func(params ...any) (any, error) {
		return func(params ...any) (any, error) {
			name, _ := params[0].(string)
			l, ok := reg.Get(name)
			if !ok {
				return nil, &UnknownLookupError{Name: name}
			}
			return l.Get(context.Background(), nil, params[1], reverse)
		}
	}
	return []expr.Option{
		expr.Function("lookup", lookup(false), new(func(string, any) any)),
		expr.Function("rlookup", lookup(true), new(func(string, any) any)),
		expr.Function("blank", func(params ...any) (any, error) { return isBlank(params[0]), nil }, new(func(any) bool)),
	}
}
