# Sourced by the benchmark scripts: signs in to the admin page with an admin token, as a
# browser would (fetch the form, post its CSRF token with the access token), and prints the
# session cookie's value.
#
#   SESSION=$(web_session http://127.0.0.1:PORT TOKEN COOKIE-JAR)
web_session() {
  local base="$1" token="$2" jar="$3" csrf
  csrf=$(curl -fs -c "$jar" "$base/admin/sign_in" \
    | grep -o 'name="authenticity_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
  curl -fs -o /dev/null -b "$jar" -c "$jar" --data-urlencode "authenticity_token=$csrf" \
    --data-urlencode "token=$token" "$base/admin/sign_in"
  awk '$6 == "_gitlab_license_server_session" {print $7}' "$jar"
}
