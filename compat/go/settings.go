// go-gitlab 0.73 against gitlab-license-server: the application settings API
// (Settings.GetSettings / Settings.UpdateSettings) and personal access token rotation.
//
// 0.73's Settings struct was modelled on GitLab 14.9: it has no deactivate_dormant_users_period,
// require_personal_access_token_expiry or users_get_by_id_limit_allowlist, so those go through
// NewRequest/Do, as go-gitlab users reach what it has no field for. It has no
// RotatePersonalAccessToken either: rotation goes through NewRequest/Do, and runs only when the
// server has the route (an anonymous POST /personal_access_tokens/:id/rotate that is not a 404;
// GitLab answers 401).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"

	gitlab "github.com/xanzy/go-gitlab"
)

const dormant30 = `{"message":{"deactivate_dormant_users_period":["'30' days of inactivity must be greater than or equal to 90"]}}`

// GitLab's defaults for the keys this server acts on.
var settingsDefaults = map[string]interface{}{
	"require_admin_approval_after_user_signup":         true,
	"deactivate_dormant_users":                         false,
	"deactivate_dormant_users_period":                  90,
	"personal_access_token_prefix":                     "glpat-",
	"require_personal_access_token_expiry":             true,
	"max_personal_access_token_lifetime":               nil,
	"throttle_authenticated_api_enabled":               false,
	"throttle_authenticated_api_requests_per_period":   7200,
	"throttle_authenticated_api_period_in_seconds":     3600,
	"throttle_unauthenticated_api_enabled":             false,
	"throttle_unauthenticated_api_requests_per_period": 3600,
	"throttle_unauthenticated_api_period_in_seconds":   3600,
}

// The keys the server shows that 0.73's Settings struct has no field for (all real GitLab keys,
// newer than the 14.9 model go-gitlab 0.73 follows).
var settingsUnknownTo073 = []string{"deactivate_dormant_users_period", "require_personal_access_token_expiry", "users_get_by_id_limit_allowlist"}

var rotationSkipped bool

// rawSettings reads GET /application/settings as a map, numbers as json.Number.
func rawSettings(gl *gitlab.Client) map[string]interface{} {
	var buf bytes.Buffer
	_, err := do(gl, http.MethodGet, "application/settings", nil, &buf)
	noErr(err, "GET /application/settings")
	return decodeMap(buf.Bytes())
}

func decodeMap(body []byte) map[string]interface{} {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]interface{}
	noErr(dec.Decode(&m), "decode settings")
	return m
}

// ourSettings picks the keys this server acts on, numbers as int, for comparing with a want map.
func ourSettings(m map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k := range settingsDefaults {
		v, ok := m[k]
		if !ok {
			out[k] = "<missing>"
			continue
		}
		if n, isNum := v.(json.Number); isNum {
			i, err := n.Int64()
			noErr(err, k)
			v = int(i)
		}
		out[k] = v
	}
	return out
}

func merged(base map[string]interface{}, over map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func settingEvents(gl *gitlab.Client) int {
	n := 0
	for page := 1; ; page++ {
		var events []struct {
			EventName string `json:"event_name"`
		}
		resp, err := do(gl, http.MethodGet, "audit_events", &gitlab.ListOptions{Page: page, PerPage: 100}, &events)
		noErr(err, "GET /audit_events")
		for _, e := range events {
			if e.EventName == "application_setting_updated" {
				n++
			}
		}
		if resp.NextPage == 0 {
			return n
		}
	}
}

func jsonTags(v interface{}) map[string]bool {
	tags := map[string]bool{}
	t := reflect.TypeOf(v)
	for i := 0; i < t.NumField(); i++ {
		tags[strings.Split(t.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	return tags
}

func settingsChecks(gl *gitlab.Client) {
	ultimate := false
	check("Settings.GetSettings() decodes GitLab's defaults; only post-14.9 keys unknown to 0.73", nil, func() {
		s, resp, err := gl.Settings.GetSettings()
		noErr(err, "GetSettings")
		must(resp.StatusCode == 200, "status %d", resp.StatusCode)
		must(s.ID > 0, "id %d", s.ID)
		must(s.RequireAdminApprovalAfterUserSignup && !s.DeactivateDormantUsers && s.PersonalAccessTokenPrefix == "glpat-" &&
			s.MaxPersonalAccessTokenLifetime == 0 &&
			!s.ThrottleAuthenticatedAPIEnabled && s.ThrottleAuthenticatedAPIRequestsPerPeriod == 7200 && s.ThrottleAuthenticatedAPIPeriodInSeconds == 3600 &&
			!s.ThrottleUnauthenticatedAPIEnabled && s.ThrottleUnauthenticatedAPIRequestsPerPeriod == 3600 && s.ThrottleUnauthenticatedAPIPeriodInSeconds == 3600,
			"GetSettings %+v", s)
		var buf bytes.Buffer
		_, err = do(gl, http.MethodGet, "application/settings", nil, &buf)
		noErr(err, "raw GET")
		// Every key 0.73 knows must decode into its field's type.
		noErr(json.Unmarshal(buf.Bytes(), new(gitlab.Settings)), "json.Unmarshal into gitlab.Settings")
		known := jsonTags(gitlab.Settings{})
		var unknown []string
		for k := range decodeMap(buf.Bytes()) {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		must(reflect.DeepEqual(unknown, settingsUnknownTo073), "keys 0.73 has no field for: %v, expected %v", unknown, settingsUnknownTo073)
		got := ourSettings(decodeMap(buf.Bytes()))
		must(reflect.DeepEqual(got, settingsDefaults), "settings %v, GitLab's defaults %v", got, settingsDefaults)
		state["settings"] = true
		// With an Ultimate license, setting the lifetime revokes every token that never expires
		// (the admin token of this run too): leave it out then.
		l, _, err := gl.License.GetLicense()
		noErr(err, "GetLicense")
		ultimate = l.Plan == "ultimate"
	})

	check("Settings.UpdateSettings() -> 200, answered, read back; one audit event per change", []string{"settings"}, func() {
		before := settingEvents(gl)
		opt := &gitlab.UpdateSettingsOptions{
			RequireAdminApprovalAfterUserSignup:         gitlab.Bool(false),
			DeactivateDormantUsers:                      gitlab.Bool(true),
			PersonalAccessTokenPrefix:                   gitlab.String("go-"),
			ThrottleAuthenticatedAPIEnabled:             gitlab.Bool(true),
			ThrottleAuthenticatedAPIRequestsPerPeriod:   gitlab.Int(80000),
			ThrottleAuthenticatedAPIPeriodInSeconds:     gitlab.Int(45),
			ThrottleUnauthenticatedAPIEnabled:           gitlab.Bool(true),
			ThrottleUnauthenticatedAPIRequestsPerPeriod: gitlab.Int(30000),
			ThrottleUnauthenticatedAPIPeriodInSeconds:   gitlab.Int(75),
		}
		want := map[string]interface{}{
			"require_admin_approval_after_user_signup":         false,
			"deactivate_dormant_users":                         true,
			"personal_access_token_prefix":                     "go-",
			"throttle_authenticated_api_enabled":               true,
			"throttle_authenticated_api_requests_per_period":   80000,
			"throttle_authenticated_api_period_in_seconds":     45,
			"throttle_unauthenticated_api_enabled":             true,
			"throttle_unauthenticated_api_requests_per_period": 30000,
			"throttle_unauthenticated_api_period_in_seconds":   75,
		}
		if !ultimate {
			opt.MaxPersonalAccessTokenLifetime = gitlab.Int(250)
			want["max_personal_access_token_lifetime"] = 250
		}
		s, resp, err := gl.Settings.UpdateSettings(opt)
		noErr(err, "UpdateSettings")
		must(resp.StatusCode == 200, "status %d", resp.StatusCode)
		must(!s.RequireAdminApprovalAfterUserSignup && s.DeactivateDormantUsers && s.PersonalAccessTokenPrefix == "go-" &&
			s.ThrottleAuthenticatedAPIEnabled && s.ThrottleAuthenticatedAPIRequestsPerPeriod == 80000 && s.ThrottleAuthenticatedAPIPeriodInSeconds == 45 &&
			s.ThrottleUnauthenticatedAPIEnabled && s.ThrottleUnauthenticatedAPIRequestsPerPeriod == 30000 && s.ThrottleUnauthenticatedAPIPeriodInSeconds == 75 &&
			(ultimate || s.MaxPersonalAccessTokenLifetime == 250),
			"UpdateSettings answered %+v", s)
		state["updated"] = true
		// The keys 0.73 has no option for, through NewRequest.
		more := map[string]interface{}{"deactivate_dormant_users_period": 150, "require_personal_access_token_expiry": false}
		var buf bytes.Buffer
		_, err = do(gl, http.MethodPut, "application/settings", more, &buf)
		noErr(err, "PUT the keys 0.73 lacks")
		wantAll := merged(merged(settingsDefaults, want), more)
		got := ourSettings(decodeMap(buf.Bytes()))
		must(reflect.DeepEqual(got, wantAll), "PUT answered %v, expected %v", got, wantAll)
		got = ourSettings(rawSettings(gl))
		must(reflect.DeepEqual(got, wantAll), "GET after the PUTs %v, expected %v", got, wantAll)
		g, _, err := gl.Settings.GetSettings()
		noErr(err, "GetSettings")
		must(g.PersonalAccessTokenPrefix == "go-" && g.DeactivateDormantUsers, "GetSettings %+v", g)
		added := settingEvents(gl) - before
		must(added == len(want)+len(more), "%d application_setting_updated events, expected %d", added, len(want)+len(more))
	})

	check("UpdateSettings() with the same values: 200, no audit event", []string{"updated"}, func() {
		before := settingEvents(gl)
		_, _, err := gl.Settings.UpdateSettings(&gitlab.UpdateSettingsOptions{
			DeactivateDormantUsers: gitlab.Bool(true), PersonalAccessTokenPrefix: gitlab.String("go-"),
		})
		noErr(err, "UpdateSettings")
		must(settingEvents(gl) == before, "a PUT that changed nothing was audited")
	})

	check("deactivate_dormant_users_period 30 -> 400 GitLab's model error (body byte for byte, go-gitlab's Message)", []string{"updated"}, func() {
		_, err := do(gl, http.MethodPut, "application/settings",
			map[string]interface{}{"deactivate_dormant_users": true, "deactivate_dormant_users_period": 30}, nil)
		must(err != nil, "the PUT succeeded")
		er, ok := err.(*gitlab.ErrorResponse)
		must(ok, "error %T %v", err, err)
		must(er.Response.StatusCode == 400, "status %d", er.Response.StatusCode)
		must(string(er.Body) == dormant30, "body %s, GitLab sends %s", er.Body, dormant30)
		wantMsg := "{message: {deactivate_dormant_users_period: ['30' days of inactivity must be greater than or equal to 90]}}"
		must(er.Message == wantMsg, "Message %q, expected %q", er.Message, wantMsg)
		got := ourSettings(rawSettings(gl))
		must(got["deactivate_dormant_users_period"] == 150, "period is now %v", got["deactivate_dormant_users_period"])
	})

	check("UpdateSettings() with an invalid prefix and a zero period -> 400, both keys named", []string{"updated"}, func() {
		_, _, err := gl.Settings.UpdateSettings(&gitlab.UpdateSettingsOptions{
			PersonalAccessTokenPrefix:               gitlab.String("no spaces!"),
			ThrottleAuthenticatedAPIPeriodInSeconds: gitlab.Int(0),
		})
		must(err != nil, "the PUT succeeded")
		er, ok := err.(*gitlab.ErrorResponse)
		must(ok, "error %T", err)
		must(er.Response.StatusCode == 400, "status %d", er.Response.StatusCode)
		var body map[string]map[string][]string
		noErr(json.Unmarshal(er.Body, &body), "decode the error body")
		want := map[string]map[string][]string{"message": {
			"personal_access_token_prefix":                 {"can contain only letters of the Base64 alphabet (RFC4648) with the addition of '@', ':' and '.'"},
			"throttle_authenticated_api_period_in_seconds": {"must be greater than 0"},
		}}
		must(reflect.DeepEqual(body, want), "body %s", er.Body)
	})

	check("UpdateSettings() with only a key this server drops (AdminMode) -> 200, nothing changes", []string{"updated"}, func() {
		before := rawSettings(gl)
		s, resp, err := gl.Settings.UpdateSettings(&gitlab.UpdateSettingsOptions{AdminMode: gitlab.Bool(true), SignupEnabled: gitlab.Bool(false)})
		noErr(err, "UpdateSettings")
		must(resp.StatusCode == 200 && s.PersonalAccessTokenPrefix == "go-", "status %d %+v", resp.StatusCode, s)
		after := rawSettings(gl)
		must(reflect.DeepEqual(before, after), "settings changed: %v -> %v", before, after)
		_, shown := after["admin_mode"]
		must(!shown, "admin_mode is shown")
	})

	check("GetSettings() with a bad token -> 401 {message: 401 Unauthorized}", nil, func() {
		_, _, err := newClient("glpat-"+strings.Repeat("w", 20), false).Settings.GetSettings()
		expectError(err, 401, map[string]string{"message": "401 Unauthorized"})
	})

	check("PUT GitLab's defaults puts every value back", nil, func() {
		var buf bytes.Buffer
		_, err := do(gl, http.MethodPut, "application/settings", settingsDefaults, &buf)
		noErr(err, "PUT defaults")
		got := ourSettings(rawSettings(gl))
		must(reflect.DeepEqual(got, settingsDefaults), "settings %v, GitLab's defaults %v", got, settingsDefaults)
	})
}

// ---------------------------------------------------------------------------------------------
// Token rotation

type rotateOptions struct {
	ExpiresAt *gitlab.ISOTime `url:"expires_at,omitempty" json:"expires_at,omitempty"`
}

func isoDay(days int) gitlab.ISOTime {
	return gitlab.ISOTime(time.Now().UTC().AddDate(0, 0, days).Truncate(24 * time.Hour))
}

func checkRotated(got, old *gitlab.PersonalAccessToken, expires gitlab.ISOTime, where string) {
	must(got.Token != "", "%s: no token", where)
	secrets = append(secrets, got.Token)
	must(got.ID > 0 && got.ID != old.ID, "%s: id %d (old %d)", where, got.ID, old.ID)
	must(got.Name == old.Name && reflect.DeepEqual(got.Scopes, old.Scopes) && got.UserID == old.UserID,
		"%s: name %q scopes %v user %d", where, got.Name, got.Scopes, got.UserID)
	must(!got.Revoked && got.Active, "%s: revoked %v active %v", where, got.Revoked, got.Active)
	must(got.ExpiresAt != nil && got.ExpiresAt.String() == expires.String(), "%s: expires_at %s, expected %s", where, isoDate(got.ExpiresAt), expires.String())
	must(got.CreatedAt != nil && !got.CreatedAt.IsZero() && got.LastUsedAt == nil, "%s: created_at %v last_used_at %v", where, got.CreatedAt, got.LastUsedAt)
	must(strings.HasPrefix(got.Token, "glpat-") && got.Token != old.Token, "%s: the new token is not a new glpat- token", where)
}

func rotationChecks(gl *gitlab.Client) {
	resp, err := http.Post(baseURL+"/api/v4/personal_access_tokens/1/rotate", "application/json", nil)
	if err != nil {
		check("anonymous POST /personal_access_tokens/:id/rotate", nil, func() { noErr(err, "POST") })
		return
	}
	probe, _ := readAll(resp)
	if resp.StatusCode == 404 {
		rotationSkipped = true
		fmt.Println("SKIPPED token rotation: the server answers an anonymous POST /api/v4/personal_access_tokens/:id/rotate with 404 (no such route yet; GitLab: 401)")
		return
	}
	fmt.Printf("     POST /personal_access_tokens/:id/rotate without a token -> %d: the rotation checks run\n", resp.StatusCode)
	check("anonymous rotate -> 401 {message: 401 Unauthorized}", nil, func() {
		must(resp.StatusCode == 401 && strings.TrimSpace(probe) == `{"message":"401 Unauthorized"}`, "status %d body %s", resp.StatusCode, probe)
	})

	var users []*gitlab.User
	defer func() {
		for _, u := range users {
			_, _ = gl.Users.DeleteUser(u.ID)
		}
	}()
	tokens := map[string]*gitlab.PersonalAccessToken{}
	check("setup: Users.CreateUser, Users.CreatePersonalAccessToken", nil, func() {
		for _, name := range []string{"go-rotate-cat", "go-rotate-dan"} {
			u, _, err := gl.Users.CreateUser(&gitlab.CreateUserOptions{
				Username: gitlab.String(name), Name: gitlab.String(name),
				Email: gitlab.String(name + "@example.org"), SkipConfirmation: gitlab.Bool(true),
				Password: gitlab.String("a-long-enough-password"),
			})
			noErr(err, "CreateUser")
			users = append(users, u)
		}
		in300 := isoDay(300)
		for key, user := range map[string]*gitlab.User{"c1": users[0], "c2": users[0], "d1": users[1]} {
			t, _, err := gl.Users.CreatePersonalAccessToken(user.ID, &gitlab.CreatePersonalAccessTokenOptions{
				Name: gitlab.String("go-" + key), Scopes: &[]string{"api"}, ExpiresAt: &in300,
			})
			noErr(err, "CreatePersonalAccessToken")
			secrets = append(secrets, t.Token)
			must(t.Token != "" && t.UserID == user.ID && t.ExpiresAt != nil && t.ExpiresAt.String() == in300.String(), "created %d", t.ID)
			tokens[key] = t
		}
		state["tokens"] = true
	})

	check("POST /personal_access_tokens/:id/rotate {expires_at} -> 200 PersonalAccessToken with token; old revoked and refused", []string{"tokens"}, func() {
		in20 := isoDay(20)
		got := new(gitlab.PersonalAccessToken)
		resp, err := do(gl, http.MethodPost, fmt.Sprintf("personal_access_tokens/%d/rotate", tokens["c1"].ID), &rotateOptions{ExpiresAt: &in20}, got)
		noErr(err, "rotate")
		must(resp.StatusCode == 200, "status %d", resp.StatusCode)
		checkRotated(got, tokens["c1"], in20, "rotate(id)")
		tokens["c1b"] = got
		old := new(gitlab.PersonalAccessToken)
		_, err = do(gl, http.MethodGet, fmt.Sprintf("personal_access_tokens/%d", tokens["c1"].ID), nil, old)
		noErr(err, "GET old token")
		must(old.Revoked && !old.Active, "old token revoked %v active %v", old.Revoked, old.Active)
		_, _, err = newClient(tokens["c1"].Token, false).Users.CurrentUser()
		expectRevoked(err)
		u, _, err := newClient(got.Token, false).Users.CurrentUser()
		noErr(err, "CurrentUser with the new token")
		must(u.Username == "go-rotate-cat", "new token is %q", u.Username)
	})

	check("POST /personal_access_tokens/self/rotate with the token itself", []string{"tokens"}, func() {
		own := newClient(tokens["c2"].Token, false)
		got := new(gitlab.PersonalAccessToken)
		_, err := do(own, http.MethodPost, "personal_access_tokens/self/rotate", nil, got)
		noErr(err, "self rotate")
		checkRotated(got, tokens["c2"], isoDay(7), "self rotate (default expiry: one week)")
		_, _, err = own.Users.CurrentUser()
		expectRevoked(err)
	})

	check("rotating a revoked token -> 400 {message: 400 Bad request - Token already revoked}", []string{"tokens"}, func() {
		_, err := do(gl, http.MethodPost, fmt.Sprintf("personal_access_tokens/%d/rotate", tokens["c1"].ID), nil, nil)
		expectError(err, 400, map[string]string{"message": "400 Bad request - Token already revoked"})
	})

	check("someone else's token as a non-admin -> 401; a missing id as an admin -> 404", []string{"tokens"}, func() {
		dan := newClient(tokens["d1"].Token, false)
		_, err := do(dan, http.MethodPost, fmt.Sprintf("personal_access_tokens/%d/rotate", tokens["c1"].ID), nil, nil)
		expectError(err, 401, map[string]string{"message": "401 Unauthorized"})
		_, err = do(gl, http.MethodPost, "personal_access_tokens/987654321/rotate", nil, nil)
		expectError(err, 404, map[string]string{"message": "404 Not Found"})
	})
}

// expectRevoked: GitLab's 401 for a revoked token, and the Message go-gitlab makes of its two keys.
func expectRevoked(err error) {
	must(err != nil, "a revoked token was accepted")
	er, ok := err.(*gitlab.ErrorResponse)
	must(ok, "error %T %v", err, err)
	must(er.Response.StatusCode == 401, "status %d (body %s)", er.Response.StatusCode, er.Body)
	var body map[string]string
	noErr(json.Unmarshal(er.Body, &body), "decode the error body")
	want := map[string]string{"error": "invalid_token", "error_description": "Token was revoked. You have to re-authorize from the user."}
	must(reflect.DeepEqual(body, want), "body %s", er.Body)
	msg := "{error: invalid_token}, {error_description: Token was revoked. You have to re-authorize from the user.}"
	must(er.Message == msg, "go-gitlab Message %q, expected %q", er.Message, msg)
}

func readAll(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err := buf.ReadFrom(resp.Body)
	return buf.String(), err
}
