/**
 * Which project settings file dcp trusts: YAML or JSON only, never code; from the working folder
 * up to the project's root and never above home; never one another user wrote or could replace.
 * Real files, real owners (another uid by chown), the built CLI.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planUp } from '../../src/cluster/spec.js';
import { loadSettings } from '../../src/config/load.js';
import { reviewLines } from '../../src/ui/cluster.js';
import { dcp, json, tempDir } from '../helpers/cli.js';
import { describeAsRoot, NOBODY } from '../helpers/users.js';

interface Tree {
  home: string;
  /** home/shared: a folder between the project and home. */
  shared: string;
  /** home/shared/project: where dcp runs. */
  project: string;
}

function tree(): Tree {
  const home = join(tempDir('dcp-tree-'), 'home');
  const shared = join(home, 'shared');
  const project = join(shared, 'project');
  mkdirSync(project, { recursive: true, mode: 0o755 });
  chmodSync(shared, 0o755);
  return { home, shared, project };
}

async function listed(t: Tree, cwd = t.project, env: Record<string, string> = {}) {
  const run = await dcp(['config', 'list', '--show-origin', '--json'], { home: t.home, cwd, env });
  expect(run.exitCode, run.stderr).toBe(0);
  return {
    ...json<{ settings: Record<string, unknown>; files: { project: string | null } }>(run.stdout),
    stderr: run.stderr,
  };
}

describeAsRoot('project files another user could have written are never read', () => {
  it('a file of another uid in a parent folder: not used, and named in a warning once', async () => {
    const t = tree();
    const planted = join(t.shared, '.dcprc.yaml');
    writeFileSync(planted, 'tls: "off"\nworkers: 9\n');
    chownSync(planted, NOBODY.uid, NOBODY.gid);
    const { settings, files, stderr } = await listed(t);
    expect(settings).toMatchObject({ tls: 'auto', workers: 2 });
    expect(files.project).toBeNull();
    expect(stderr).toContain(
      `warning: ignored the project settings file ${planted}: the file belongs to another user (uid ${NOBODY.uid})`,
    );
    expect(stderr.split(planted).length - 1).toBe(1);
  });

  it('a file in a folder every user can write: not used', async () => {
    const t = tree();
    const planted = join(t.shared, '.dcprc.json');
    writeFileSync(planted, JSON.stringify({ tls: 'off' }));
    chmodSync(t.shared, 0o777);
    const { settings, stderr } = await listed(t);
    expect(settings.tls).toBe('auto');
    expect(stderr).toContain(`its folder ${t.shared} is writable by every user`);
  });

  it('a file its group can write, in a group that is not the user’s own: not used', async () => {
    const t = tree();
    const planted = join(t.project, '.dcprc');
    writeFileSync(planted, 'tls: "off"\n');
    chownSync(planted, 0, NOBODY.gid);
    chmodSync(planted, 0o664);
    const { settings, stderr } = await listed(t);
    expect(settings.tls).toBe('auto');
    expect(stderr).toContain(`the file is writable by its group (gid ${NOBODY.gid})`);
  });

  it('a file its own group can write (an ACL shows so too): not used either', async () => {
    const t = tree();
    writeFileSync(join(t.project, '.dcprc.yaml'), 'tls: "off"\n');
    chmodSync(join(t.project, '.dcprc.yaml'), 0o664);
    const { settings, stderr } = await listed(t);
    expect(settings.tls).toBe('auto');
    expect(stderr).toContain('the file is writable by its group (gid 0) or through an ACL');
  });

  it('a link to a file in another user’s folder: not used', async () => {
    const t = tree();
    const theirs = join(t.home, 'theirs');
    mkdirSync(theirs);
    writeFileSync(join(theirs, 'settings.yaml'), 'tls: "off"\n');
    chownSync(theirs, NOBODY.uid, NOBODY.gid);
    const { symlinkSync } = await import('node:fs');
    symlinkSync(join(theirs, 'settings.yaml'), join(t.project, '.dcprc.yaml'));
    const { settings, stderr } = await listed(t);
    expect(settings.tls).toBe('auto');
    expect(stderr).toContain(`its folder ${theirs} belongs to another user`);
  });

  it('each skipped file is named once per run, however often settings are read', async () => {
    const t = tree();
    const planted = join(t.shared, '.dcprc.yaml');
    writeFileSync(planted, 'workers: 9\n');
    chownSync(planted, NOBODY.uid, NOBODY.gid);
    const said: string[] = [];
    const env = { HOME: t.home, DASK_CONFIG: join(t.home, 'dask') };
    for (let i = 0; i < 3; i++) await loadSettings({ cwd: t.project, env, warn: (m) => said.push(m) });
    expect(said.filter((m) => m.includes(planted))).toHaveLength(1);
  });
});

describe('where the search goes', () => {
  it('a .dcprc.yaml of the user’s own inside a git repository is used, and each value names it', async () => {
    const t = tree();
    mkdirSync(join(t.project, '.git'));
    const file = join(t.project, '.dcprc.yaml');
    writeFileSync(file, 'workers: 5\nthreads: 3\n');
    const run = await dcp(['config', 'list', '--show-origin'], { home: t.home, cwd: join(t.project) });
    expect(run.stdout).toMatch(new RegExp(`^workers = 5\\s+\\(project file ${file}\\)$`, 'm'));
    expect(run.stdout).toMatch(new RegExp(`^threads = 3\\s+\\(project file ${file}\\)$`, 'm'));
    expect(run.stderr).toBe('');
  });

  it('stops at the project’s root (.git or package.json)', async () => {
    for (const marker of ['.git', 'package.json']) {
      const t = tree();
      writeFileSync(join(t.shared, '.dcprc.yaml'), 'workers: 7\n');
      if (marker === '.git') mkdirSync(join(t.project, '.git'));
      else writeFileSync(join(t.project, 'package.json'), '{"name": "x"}');
      const below = join(t.project, 'src');
      mkdirSync(below);
      expect((await listed(t, below)).settings.workers, marker).toBe(2);
    }
  });

  it('never goes above the home folder', async () => {
    const t = tree();
    writeFileSync(join(t.home, '..', '.dcprc.yaml'), 'workers: 7\n');
    expect((await listed(t)).settings.workers).toBe(2);
    writeFileSync(join(t.home, '.dcprc.yaml'), 'workers: 6\n');
    expect((await listed(t)).settings.workers).toBe(6);
  });

  it('never executes a JS or TS config: a marker it would write never appears', async () => {
    const t = tree();
    const marker = join(t.home, 'executed');
    const code = `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran'); module.exports = { tls: 'off' };`;
    const esm = `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(marker)}, 'ran'); export default { tls: 'off' };`;
    mkdirSync(join(t.project, '.config'));
    for (const [name, text] of [
      ['dcp.config.js', code],
      ['dcp.config.cjs', code],
      ['dcp.config.mjs', esm],
      ['dcp.config.ts', esm],
      ['.dcprc.js', code],
      ['.dcprc.cjs', code],
      ['.dcprc.mjs', esm],
      ['.dcprc.ts', esm],
      ['.config/dcprc.js', code],
      ['.config/dcprc.mjs', esm],
    ])
      writeFileSync(join(t.project, name!), text!);
    // And a cosmiconfig meta-config that would point the search at them.
    writeFileSync(
      join(t.project, '.config', 'config.yaml'),
      'cosmiconfig:\n  searchPlaces: ["dcp.config.js"]\n',
    );
    expect((await listed(t)).settings.tls).toBe('auto');
    const up = await dcp(['up', '--provider', 'gcp'], { home: t.home, cwd: t.project });
    expect(up.exitCode).toBe(2);
    expect(existsSync(marker)).toBe(false);
  });

  it('what is no regular file (a FIFO, a folder another user made) is skipped, never waited on or in the way', async () => {
    const t = tree();
    const { execa } = await import('execa');
    await execa('mkfifo', [join(t.project, '.dcprc.yaml')]);
    mkdirSync(join(t.shared, '.dcprc'));
    chownSync(join(t.shared, '.dcprc'), NOBODY.uid, NOBODY.gid);
    const run = await dcp(['config', 'list'], { home: t.home, cwd: t.project, timeoutMs: 10_000 });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain(
      `ignored the project settings file ${join(t.project, '.dcprc.yaml')}: it is not a regular file`,
    );
    expect(run.stderr).toContain(`ignored the project settings file ${join(t.shared, '.dcprc')}`);
  });

  it('a package.json that does not parse holds nothing for dcp, and the search goes on', async () => {
    const t = tree();
    writeFileSync(join(t.project, 'package.json'), '\uFEFF{"name": "x", broken');
    writeFileSync(join(t.project, '.dcprc.json'), '\uFEFF{"workers": 3}');
    expect((await listed(t)).settings.workers).toBe(3);
  });

  it('a linked home folder does not let the search past home', async () => {
    const t = tree();
    const { symlinkSync } = await import('node:fs');
    const linked = join(t.home, '..', 'linked-home');
    symlinkSync(t.home, linked);
    writeFileSync(join(t.home, '..', '.dcprc.yaml'), 'workers: 7\n');
    const run = await dcp(['config', 'list', '--json'], { home: linked, cwd: t.project });
    expect(json<{ settings: { workers: number } }>(run.stdout).settings.workers).toBe(2);
  });
});

describe('what a project file loosens is said before up acts on it', () => {
  it('without questions: a warning naming the file, before anything is made; tls: off needs --insecure', async () => {
    const t = tree();
    const file = join(t.project, '.dcprc.yaml');
    writeFileSync(file, 'tls: "off"\n');
    const refused = await dcp(['up'], { home: t.home, cwd: t.project });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(`error: the project file ${file} sets tls: off`);
    expect(refused.stderr).toContain('pass --insecure if you mean it');
    // A --python that is not one stops up right after the plan: nothing starts.
    const run = await dcp(['up', '--insecure', '--python', join(t.home, 'no-python')], {
      home: t.home,
      cwd: t.project,
    });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(`warning: the project file ${file} sets tls: off`);
  });

  it('a relative tls_dir is the project file’s, wherever dcp runs below it', async () => {
    const t = tree();
    writeFileSync(join(t.project, '.dcprc.yaml'), 'tls: byo\ntls_dir: certs\n');
    mkdirSync(join(t.project, 'sub'));
    const plan = await planUp(
      { wait: true, insecure: false },
      { HOME: t.home, DASK_CONFIG: join(t.home, 'dask') },
      join(t.project, 'sub'),
    );
    expect(plan.tls).toEqual({ mode: 'byo', dir: join(t.project, 'certs') });
  });

  it('in the review, marked, for every loosening setting on a cloud', async () => {
    const t = tree();
    const file = join(t.project, '.dcprc.yaml');
    const certs = join(t.home, 'certs');
    writeFileSync(
      file,
      `tls: byo\ntls_dir: ${certs}\nnetworking: public\ningress: [{ports: [8786], cidr: 10.0.0.0/8}]\nimage: evil.example/dask:latest\naws:\n  ami: ami-0123456789abcdef0\n`,
    );
    const plan = await planUp(
      { wait: true, insecure: false, provider: 'aws', region: 'eu-west-1' },
      { HOME: t.home, DASK_CONFIG: join(t.home, 'dask') },
      t.project,
    );
    const lines = reviewLines(plan, [], '/state', '/client.yaml');
    for (const what of [
      'tls: byo',
      `tls_dir: ${certs}`,
      'networking: public',
      'ingress: 10.0.0.0/8 on 8786',
      'image: evil.example/dask:latest',
      'aws.ami: ami-0123456789abcdef0',
    ])
      expect(lines).toContain(
        lines.find((line) => line.startsWith(`! the project file ${file} sets ${what}`)),
      );
    expect(lines.filter((line) => line.startsWith('! ')).length).toBe(6);
  });

  it('in the review: whose Azure subscription is billed, and whose VNet may reach the cluster', async () => {
    const t = tree();
    const file = join(t.project, '.dcprc.yaml');
    const subscription = '1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a';
    writeFileSync(file, `azure:\n  subscription_id: ${subscription}\n  vnet: their-rg/their-vnet\n`);
    const plan = await planUp(
      { wait: true, insecure: false, provider: 'azure', region: 'westeurope' },
      { HOME: t.home, DASK_CONFIG: join(t.home, 'dask') },
      t.project,
    );
    const marked = reviewLines(plan, [], '/state', '/client.yaml').filter((line) => line.startsWith('! '));
    expect(marked).toEqual([
      `! the project file ${file} sets azure.subscription_id: ${subscription} (whose subscription is billed)`,
      `! the project file ${file} sets azure.vnet: their-rg/their-vnet (the network whose machines may reach a private cluster)`,
    ]);
  });

  it('a project file or variable that opens ports to the internet needs --allow-anywhere on up', async () => {
    const t = tree();
    writeFileSync(join(t.project, '.dcprc.yaml'), 'ingress: [{ports: [8786], cidr: 0.0.0.0/1}]\n');
    const flags = { wait: true, insecure: false, provider: 'aws', region: 'eu-west-1' };
    await expect(
      planUp(flags, { HOME: t.home, DASK_CONFIG: join(t.home, 'dask') }, t.project),
    ).rejects.toThrow(/project file .*\.dcprc\.yaml sets ingress 0\.0\.0\.0\/1/);
    await expect(
      planUp(
        flags,
        {
          HOME: t.home,
          DASK_CONFIG: join(t.home, 'dask'),
          DCP_INGRESS: '[{"ports": [8786], "cidr": "::/0"}]',
        },
        tempDir(),
      ),
    ).rejects.toThrow(/environment DCP_INGRESS sets ingress ::\/0/);
    const allowed = await planUp(
      { ...flags, allowAnywhere: true },
      { HOME: t.home, DASK_CONFIG: join(t.home, 'dask') },
      t.project,
    );
    expect(allowed.spec.ingress).toEqual([{ ports: [8786], cidr: '0.0.0.0/1' }]);
  });
});
