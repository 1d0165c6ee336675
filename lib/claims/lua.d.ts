/** A Lua script's text: imported as a string (tsup's text loader at build, a Jest transform in tests). */
declare module '*.lua' {
  const source: string;
  export default source;
}
