// Command ferretdb runs FerretDB v1 (embedded package) for local runs and tests.
//
// A plain `go install` of FerretDB v1.24.2 panics on a missing version.txt; embedding the public
// package in this small main module avoids that (see reference/mongodb.md, route 1).
//
// By default FerretDB itself listens on a private Unix socket and -listen-addr is served by the write
// serialiser (serialize.go), which makes single-document conditional updates atomic as on MongoDB.
// -serialize-writes=false exposes FerretDB directly; it exists to measure and demonstrate the race only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "sqlite", "backend handler: sqlite or postgresql")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite URI of an existing directory")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL URL for the postgresql handler")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn or error")
	serialize := flag.Bool("serialize-writes", true, "serialise write commands per database (see serialize.go)")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		// Collect garbage at 4x the live heap rather than 2x: FerretDB allocates for every document it decodes,
		// and its live heap is tens of MB, so this trades a little memory for less CPU (GOGC still overrides).
		debug.SetGCPercent(400)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: bad -log-level %q\n", *logLevel)
		os.Exit(2)
	}
	logger := slog.New(&lazyAttrs{base: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})})
	var err error

	listener := ferretdb.ListenerConfig{TCP: *listen}
	var sockDir string
	if *serialize {
		if sockDir, err = os.MkdirTemp("", "ferretdb-"); err != nil {
			fmt.Fprintf(os.Stderr, "ferretdb: %s\n", err)
			os.Exit(1)
		}
		defer os.RemoveAll(sockDir) // os.Exit paths below remove it themselves
		listener = ferretdb.ListenerConfig{Unix: filepath.Join(sockDir, "ferretdb.sock")}
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      listener,
		Logger:        logger,
		Handler:       *handler,
		SQLiteURL:     syncNormal(*sqliteURL),
		PostgreSQLURL: *pgURL,
	})
	if err != nil {
		os.RemoveAll(sockDir)
		fmt.Fprintf(os.Stderr, "ferretdb: %s\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	if *serialize {
		// Bind the public address only once FerretDB answers, so "port open" means ready.
		if err = waitUnix(listener.Unix, done); err == nil {
			err = serveSerialized(ctx, *listen, listener.Unix, logger)
		}
		stop()
		if runErr := <-done; err == nil {
			err = runErr
		}
	} else {
		logger.Warn("ferretdb listening", "addr", *listen, "handler", *handler, "serialize_writes", false)
		err = <-done
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "ferretdb: %s\n", err)
		os.RemoveAll(sockDir)
		os.Exit(1)
	}
}

// syncNormal adds `_pragma=synchronous(normal)` to a SQLite URI that sets no synchronous mode. FerretDB runs
// SQLite in WAL mode, whose default (FULL) syncs the log to disk at every commit; with NORMAL a commit is
// written to the log (a killed process loses nothing, as every write the file system took survives it) and
// the log is synced at checkpoints, so only an operating-system crash or power cut can undo the last commits.
// That is MongoDB's own default for acknowledged writes (w:1 without j:true, journal flushed every 100 ms),
// and it shortens every write the serialiser holds its lock for.
func syncNormal(uri string) string {
	if strings.Contains(uri, "synchronous") {
		return uri
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + "_pragma=synchronous(normal)"
}

// waitUnix waits until FerretDB has created its Unix socket (it listens right after), or fails on start-up.
// No probe connection: FerretDB would log a warning for a client that closes without a request.
func waitUnix(path string, done <-chan error) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case err := <-done:
			return fmt.Errorf("FerretDB stopped during start-up: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("FerretDB did not open its Unix socket within 30s")
}

// serveSerialized serves addr through the write serialiser until ctx is done.
func serveSerialized(ctx context.Context, addr, backend string, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	// Readiness marker for supervisors and tests that read stderr.
	logger.Warn("ferretdb listening", "addr", addr, "serialize_writes", true)
	return newSerializer(backend, logger).serve(ln)
}

// lazyAttrs defers a logger's With attributes to the records it really writes. FerretDB derives a logger
// with the SQL arguments (whole documents) twice for every statement it runs, to log at debug level, and
// slog's TextHandler formats such attributes as soon as they are attached, level or not: under load that was
// a fourteenth of the server's CPU, spent on text nobody reads.
type lazyAttrs struct {
	base   slog.Handler
	derive []func(slog.Handler) slog.Handler // WithAttrs / WithGroup calls, oldest first
}

func (h *lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return h.base.Enabled(ctx, level)
}

func (h *lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	out := h.base
	for _, d := range h.derive {
		out = d(out)
	}
	return out.Handle(ctx, r)
}

func (h *lazyAttrs) with(d func(slog.Handler) slog.Handler) slog.Handler {
	derive := make([]func(slog.Handler) slog.Handler, len(h.derive), len(h.derive)+1)
	copy(derive, h.derive)
	return &lazyAttrs{base: h.base, derive: append(derive, d)}
}

func (h *lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithAttrs(attrs) })
}

func (h *lazyAttrs) WithGroup(name string) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithGroup(name) })
}
