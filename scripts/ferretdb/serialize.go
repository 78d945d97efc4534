package main

// Write serialiser: a MongoDB wire-protocol relay in front of the embedded FerretDB that runs the
// data-modifying commands of one database one at a time.
//
// Why: FerretDB v1.24.2's update, findAndModify and delete handlers first SELECT the matching documents
// (an autocommit statement on a pooled connection), apply the operators in Go, and then write each
// document back by _id in a separate SQLite transaction (internal/handler/common/update.go,
// msg_findandmodify.go, msg_delete.go). Two concurrent `{"_id": x, "state": "PENDING"}` -> SIGNED updates
// therefore both match and both win, and concurrent $inc loses increments. MongoDB makes every
// single-document write atomic and the services' state machines rely on it. No SQLite setting can fix
// this (_txlock=immediate, busy_timeout, journal mode or a one-connection pool act on single statements or
// transactions, and the read is in neither), and the PostgreSQL backend shares the same handler code.
//
// Holding a per-database lock from a write command's request until its reply makes every write command
// atomic with respect to every other write to that database (stronger than MongoDB, which only promises
// it per document). Reads are not locked: each document is rewritten by one UPDATE, so a reader sees the
// old or the new version. SQLite admits one writer per database file anyway, so little concurrency is lost.
// Not covered: unacknowledged writes (w=0, OP_MSG moreToCome) are relayed without waiting for a reply.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/FerretDB/wire/wirebson"
)

const (
	opMsg           = 2013
	msgHeaderLen    = 16
	maxMessageBytes = 48_000_000 + 16*1024 // MongoDB's maxMessageSizeBytes plus slack for the header
	flagChecksum    = 1 << 0
	flagMoreToCome  = 1 << 1
)

// writeCommands are the commands FerretDB implements as read-then-write (plus insert, so that an upsert
// never races an insert of the same key into a spurious duplicate-key error).
var writeCommands = map[string]bool{
	"insert": true, "update": true, "delete": true, "findAndModify": true, "findandmodify": true,
}

// serializer relays client connections to FerretDB's Unix socket, one backend connection per client.
type serializer struct {
	backend string
	l       *slog.Logger

	mu    sync.Mutex
	locks map[string]*sync.Mutex // database name -> write lock
}

func newSerializer(backendSocket string, l *slog.Logger) *serializer {
	return &serializer{backend: backendSocket, l: l, locks: map[string]*sync.Mutex{}}
}

func (s *serializer) lockFor(db string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.locks[db]
	if m == nil {
		m = new(sync.Mutex)
		s.locks[db] = m
	}
	return m
}

// serve accepts connections until ln is closed.
func (s *serializer) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go s.relay(c)
	}
}

// relay forwards one client connection. The wire protocol is request/reply per connection (drivers never
// pipeline), so a sequential loop suffices: forward a request, then its reply (or exhaust stream).
func (s *serializer) relay(client net.Conn) {
	defer client.Close()
	backend, err := dialBackend(s.backend)
	if err != nil {
		s.l.Error("serializer: cannot reach FerretDB", "err", err)
		return
	}
	defer backend.Close()

	cr, br := bufio.NewReader(client), bufio.NewReader(backend)
	for {
		req, err := readMessage(cr)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.l.Debug("serializer: client read", "err", err)
			}
			return
		}
		db, write, wantsReply := inspect(req)

		var lock *sync.Mutex
		if write && wantsReply {
			lock = s.lockFor(db)
			lock.Lock()
		}
		err = exchange(req, wantsReply, backend, br, client)
		if lock != nil {
			lock.Unlock()
		}
		if err != nil {
			s.l.Debug("serializer: relay", "err", err)
			return
		}
	}
}

// dialBackend connects to FerretDB, retrying briefly (its socket file appears just before it listens).
func dialBackend(path string) (net.Conn, error) {
	var err error
	for range 50 {
		var c net.Conn
		if c, err = net.Dial("unix", path); err == nil {
			return c, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// exchange sends req to FerretDB and copies its reply (every message of an exhaust stream) to the client.
func exchange(req []byte, wantsReply bool, backend net.Conn, br *bufio.Reader, client net.Conn) error {
	if _, err := backend.Write(req); err != nil {
		return err
	}
	for wantsReply {
		reply, err := readMessage(br)
		if err != nil {
			return err
		}
		if _, err := client.Write(reply); err != nil {
			return err
		}
		wantsReply = opCode(reply) == opMsg && msgFlags(reply)&flagMoreToCome != 0
	}
	return nil
}

// readMessage reads one whole wire message (header included).
func readMessage(r *bufio.Reader) ([]byte, error) {
	var header [msgHeaderLen]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.LittleEndian.Uint32(header[:4])))
	if n < msgHeaderLen || n > maxMessageBytes {
		return nil, fmt.Errorf("bad message length %d", n)
	}
	msg := make([]byte, n)
	copy(msg, header[:])
	if _, err := io.ReadFull(r, msg[msgHeaderLen:]); err != nil {
		return nil, err
	}
	return msg, nil
}

func opCode(msg []byte) int32 { return int32(binary.LittleEndian.Uint32(msg[12:16])) }

func msgFlags(msg []byte) uint32 {
	if len(msg) < msgHeaderLen+4 {
		return 0
	}
	return binary.LittleEndian.Uint32(msg[16:20])
}

// inspect returns the database of an OP_MSG write command, whether it is one, and whether the client
// waits for a reply. Anything it cannot parse is relayed as a non-write; FerretDB reports the error.
func inspect(msg []byte) (db string, write, wantsReply bool) {
	if opCode(msg) != opMsg {
		return "", false, true // OP_QUERY handshakes; drivers send nothing else that FerretDB accepts
	}
	flags := msgFlags(msg)
	wantsReply = flags&flagMoreToCome == 0
	end := len(msg)
	if flags&flagChecksum != 0 {
		end -= 4
	}
	// Sections: kind 0 is the command document, kind 1 a document sequence (int32 size, then data).
	for pos := msgHeaderLen + 4; pos+5 <= end; {
		kind := msg[pos]
		size := int(int32(binary.LittleEndian.Uint32(msg[pos+1 : pos+5])))
		if size < 5 || pos+1+size > end {
			return "", false, wantsReply
		}
		if kind == 0 {
			doc, err := wirebson.RawDocument(msg[pos+1 : pos+1+size]).Decode()
			if err != nil {
				return "", false, wantsReply
			}
			db, _ = doc.Get("$db").(string)
			return db, writeCommands[doc.Command()], wantsReply
		}
		pos += 1 + size
	}
	return "", false, wantsReply
}
