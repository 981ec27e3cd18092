package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// arrival is one notification as it reached the receiver.
type arrival struct {
	kind   string // "gridline" or "alertmanager"
	id     string // webhook-id header, or Alertmanager's groupKey
	key    string // work_order_id, or the alert's id label
	typ    string // the notification type, or "alert"
	atNano int64  // wall clock on arrival (the sender uses the same clock)
	sigOK  bool
}

type store struct {
	mu   sync.Mutex
	rows []arrival
}

func (s *store) add(rows ...arrival) {
	s.mu.Lock()
	s.rows = append(s.rows, rows...)
	s.mu.Unlock()
}

// serve writes the rows from index `from` on as TSV: kind, id, key, type, unix ns, sig ok.
func (s *store) serve(w http.ResponseWriter, r *http.Request) {
	from, _ := strconv.Atoi(r.URL.Query().Get("from"))
	s.mu.Lock()
	if from < 0 || from > len(s.rows) {
		from = len(s.rows)
	}
	rows := s.rows[from:]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/tab-separated-values")
	var b strings.Builder
	for _, a := range rows {
		ok := 0
		if a.sigOK {
			ok = 1
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%d\t%d\n", a.kind, a.id, a.key, a.typ, a.atNano, ok)
	}
	io.WriteString(w, b.String())
}

// signature is what Gridline's notify sends: v1,<base64 HMAC-SHA256(secret, id.ts.body)>.
func signature(secret []byte, id, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func verified(secret []byte, h http.Header, body []byte) bool {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	if id == "" || ts == "" {
		return false
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return false
	}
	expected := []byte(signature(secret, id, ts, body))
	for _, candidate := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal(expected, []byte(candidate)) {
			return true
		}
	}
	return false
}

func receive(argv []string) error {
	fs := flag.NewFlagSet("receive", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:28020", "address to listen on (127.0.0.1 only)")
	fs.Parse(argv)
	if err := loopbackOnly(*listen); err != nil {
		return err
	}
	// From the environment, not the command line: a secret stays out of `ps`.
	secret := []byte(os.Getenv("BENCH_WEBHOOK_SECRET"))
	if len(secret) == 0 {
		return fmt.Errorf("BENCH_WEBHOOK_SECRET is not set")
	}
	s := &store{rows: make([]arrival, 0, 1<<16)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /gridline", func(w http.ResponseWriter, r *http.Request) {
		at := time.Now().UnixNano()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		var n struct {
			Type        string `json:"type"`
			WorkOrderID string `json:"work_order_id"`
		}
		_ = json.Unmarshal(body, &n)
		// A bad signature is recorded and counted, and still answered 2xx: refusing it
		// would only make notify retry the same bytes and blur the duplicate count.
		s.add(arrival{"gridline", r.Header.Get("webhook-id"), n.WorkOrderID, n.Type, at,
			verified(secret, r.Header, body)})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /alertmanager", func(w http.ResponseWriter, r *http.Request) {
		at := time.Now().UnixNano()
		var n struct {
			GroupKey string `json:"groupKey"`
			Alerts   []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(w, "bad JSON", http.StatusBadRequest)
			return
		}
		rows := make([]arrival, 0, len(n.Alerts))
		for _, a := range n.Alerts {
			rows = append(rows, arrival{"alertmanager", n.GroupKey, a.Labels["id"], "alert", at, true})
		}
		s.add(rows...)
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /arrivals", s.serve)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
