/** Jest transform: a `.lua` file becomes a module whose default export is its text (as tsup's text loader builds it). */
module.exports = {
  process(source) {
    return { code: `module.exports = ${JSON.stringify(source)};` };
  },
};
