package console

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
)

// handleDetailPage shows one execution.
func (s *server) handleDetailPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		d, err := s.detail(c.Request.Context(), c.Param("id"))
		if errors.Is(err, errNotFound) {
			s.render(c, http.StatusNotFound, "error", map[string]any{"Title": "Not found",
				"Message": "No execution " + c.Param("id") + " in queue " + s.index.Name() + ". It may have passed its retention and been deleted."})
			return
		}
		if err != nil {
			c.Error(err)
			s.render(c, http.StatusInternalServerError, "error", map[string]any{"Title": "Error", "Message": "Cannot read the execution; see the dashboard's log."})
			return
		}
		s.render(c, http.StatusOK, "detail", map[string]any{"Title": d.Type + " " + d.ID, "D": d, "Pretty": prettyJSON(d.Payload)})
	}
}
