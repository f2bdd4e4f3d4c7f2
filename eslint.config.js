// The pages' JavaScript and its tests, linted in the test command (deploy/test.sh) with ESLint's recommended rules.
import js from "@eslint/js";
import globals from "globals";

export default [
  {ignores: ["node_modules/", ".venv/", "var/", "test-artifacts/", "tests/netguard_site/"]},
  js.configs.recommended,
  {rules: {"no-unused-vars": ["error", {caughtErrors: "none"}]}},  // a catch may ignore what it caught
  {
    // the pages' scripts: plain browser scripts, or ES modules where they import each other
    files: ["**/static/**/*.js"],
    languageOptions: {ecmaVersion: 2022, sourceType: "module", globals: {...globals.browser}},
  },
  {
    files: ["tests/js/**/*.js", "eslint.config.js"],
    languageOptions: {ecmaVersion: 2022, sourceType: "module", globals: {...globals.node}},
  },
];
