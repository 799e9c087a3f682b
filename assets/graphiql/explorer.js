// Starts GraphiQL against this server's /api/graphql. Kept out of the HTML so that the page's
// Content-Security-Policy can forbid inline scripts.
(function () {
  var defaultQuery = [
    "# Paste a personal access token into the Headers pane below, for example:",
    "#   { \"Authorization\": \"Bearer glpat-...\" }",
    "# Administrators see the instance's add-on purchases; group owners pass the group's ID.",
    "query {",
    "  addOnPurchases {",
    "    id",
    "    name",
    "    assignedQuantity",
    "    purchasedQuantity",
    "  }",
    "}",
    ""
  ].join("\n");
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: document.body.dataset.endpoint }),
      defaultQuery: defaultQuery,
      defaultHeaders: "{}",
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      shouldPersistHeaders: false
    })
  );
})();
