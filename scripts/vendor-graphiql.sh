#!/usr/bin/env bash
# Refreshes assets/graphiql/ from the npm registry: GraphiQL's built bundle and stylesheet,
# and the React/ReactDOM UMD builds it runs on. The server embeds these files, so the explorer
# at /-/graphql-explorer works with no CDN. Review the diff, run the explorer test, commit.
#
#   scripts/vendor-graphiql.sh [graphiql-version] [react-version]
set -euo pipefail
GRAPHIQL="${1:-3.9.0}"
REACT="${2:-18.3.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/assets/graphiql"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null
for archive in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  package="${archive%-*}"
  mkdir "$package"
  tar xzf "$archive.tgz" -C "$package"
done
cp graphiql/package/graphiql.min.js graphiql/package/graphiql.min.css "$OUT/"
cp react/package/umd/react.production.min.js react-dom/package/umd/react-dom.production.min.js "$OUT/"
{
  echo "GraphiQL $GRAPHIQL"; cat graphiql/package/LICENSE; echo
  echo "React $REACT / ReactDOM $REACT"; cat react/package/LICENSE
} >"$OUT/LICENSES.txt"
cd "$OUT"
sha256sum graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js >SHA256SUMS
echo "vendored GraphiQL $GRAPHIQL and React $REACT into $OUT"
