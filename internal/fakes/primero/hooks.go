package primero

import (
	"net/http"
	"time"
)

// hookRoutes serves the Go test hooks over HTTP for out-of-process use
// (`engine fake primero`). They live under /__fake/, never under /api/v2,
// and need no credentials.
func (s *Server) hookRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /__fake/requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"data": s.Requests()})
	})
	mux.HandleFunc("GET /__fake/deliveries", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"data": s.Deliveries()})
	})
	mux.HandleFunc("POST /__fake/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /__fake/expire-tokens", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /__fake/clock", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("advance"))
		if err != nil || d < 0 {
			writeErrors(w, r, http.StatusUnprocessableEntity, "advance must be a positive duration such as 90m", nil)
			return
		}
		s.Advance(d)
		writeJSON(w, http.StatusOK, map[string]any{"now": fmtMS(s.now().UnixMilli())})
	})
	mux.HandleFunc("POST /__fake/referrals/{rid}", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		changed, err := s.RespondReferral(r.PathValue("rid"), q.Get("user"), q.Get("status"), q.Get("note"))
		if err != nil {
			notFound(w, r, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"changed": changed})
	})
}
