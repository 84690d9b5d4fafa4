// @ts-self-types="./index.d.ts"
// `export * as default from ...` fails on Webpack v4
// https://github.com/eemeli/yaml/issues/228
import * as YAML from './bundle.js'
export default YAML
export * from './bundle.js'
