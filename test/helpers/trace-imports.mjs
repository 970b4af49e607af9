// Loaded with `node --import`: appends every module URL the process resolves to the file named
// by DCP_TRACE_IMPORTS, so a test can see what a command loaded.
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
    import { appendFileSync } from 'node:fs';
    export async function resolve(specifier, context, next) {
      const result = await next(specifier, context);
      appendFileSync(${JSON.stringify(process.env.DCP_TRACE_IMPORTS)}, result.url + '\\n');
      return result;
    }
  `)}`,
);
