package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// PostgresEnv names the variable holding the DSN of a PostgreSQL server
// the tests may use; .ci/run starts one (.ci/postgres.sh) and sets it.
const PostgresEnv = "CASESYNC_TEST_POSTGRES_DSN"

// PostgresDSN returns the DSN of an empty schema of its own on the test
// server (dropped when the test ends), so tests running at once never see
// each other's tables. Without a server the test skips saying why; under
// CI=true it fails, since CI must test against a real database.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is not set: CI must run the PostgreSQL tests (.ci/run starts a server with .ci/postgres.sh)", PostgresEnv)
		}
		tb.Skipf("no PostgreSQL server: set %s (e.g. from .ci/postgres.sh start DIR) to run this test against one", PostgresEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL at %s does not answer: %v", PostgresEnv, err)
		}
		tb.Skipf("PostgreSQL at %s does not answer (%v): start one with .ci/postgres.sh", PostgresEnv, err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
