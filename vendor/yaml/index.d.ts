import * as YAML from "./dist/index.d.ts";
export default YAML;
export * from "./dist/index.d.ts";
