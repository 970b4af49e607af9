import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { SETTINGS_HELP } from '../../src/ui/help.js';
import { SETTING_KEYS } from '../../src/config/schema.js';
import { execa } from 'execa';
import { dcp, json, tempDir } from '../helpers/cli.js';
import { dcpAsNobody, describeAsRoot, giveToNobody } from '../helpers/users.js';

let home: string;
let settingsFile: string;

const run = (args: string[], options: { env?: Record<string, string>; cwd?: string } = {}) =>
  dcp(args, { home, ...options });

const ORIGINAL = [
  '# my dcp settings',
  'dcp:',
  '  workers: 3  # enough for now',
  '  aws:',
  '    region: eu-west-1',
  'other:',
  '  thing: kept',
  '',
].join('\n');

beforeEach(() => {
  home = tempDir('dcp-home-');
  mkdirSync(join(home, '.config', 'dask'), { recursive: true });
  settingsFile = join(home, '.config', 'dask', 'dcp.yaml');
  writeFileSync(settingsFile, ORIGINAL);
});

describe('dcp config: bad input exits 2 with a one-line reason and leaves the file byte-for-byte unchanged', () => {
  it.each([
    [
      'a CIDR with an octet over 255',
      ['config', 'set', 'ingress', '--cidr', '10.1.0.300/16'],
      /--cidr "10.1.0.300\/16" is not a CIDR block/,
    ],
    [
      '0.0.0.0/0 without --allow-anywhere',
      ['config', 'set', 'ingress', '--cidr', '0.0.0.0/0'],
      /0.0.0.0\/0 would open ports 8786, 8787 to the whole internet/,
    ],
    [
      '::/0 without --allow-anywhere',
      ['config', 'set', 'ingress', '--cidr', '::/0'],
      /::\/0 would open ports/,
    ],
    [
      'port 70000',
      ['config', 'set', 'ingress', '--cidr', '10.0.0.0/8', '--ports', '70000'],
      /--ports "70000": "70000" is not a port from 1 to 65535/,
    ],
    [
      'port 70000 in the JSON form',
      ['config', 'set', 'ingress', '[{"ports": [70000], "cidr": "10.0.0.0/8"}]'],
      /ingress\[0\.ports\.0\]: ports are whole numbers from 1 to 65535/,
    ],
    [
      'JSON that does not parse',
      ['config', 'set', 'ingress', '[{"ports": [8786]'],
      /ingress is not valid JSON/,
    ],
    ['an unknown key', ['config', 'set', 'wrkers', '3'], /unknown setting "wrkers"/],
    [
      'a value of the wrong type',
      ['config', 'set', 'workers', 'abc'],
      /workers: "abc" must be a whole number from 1 to 1000/,
    ],
    [
      'a provider nobody supports',
      ['config', 'set', 'provider', 'ibm'],
      /provider: "ibm" must be one of local, aws, gcp, azure, digitalocean/,
    ],
    [
      '--cidr on another key',
      ['config', 'set', 'workers', '4', '--cidr', '10.0.0.0/8'],
      /--cidr, --ports, --append and --allow-anywhere are for dcp config set ingress/,
    ],
    ['a group as a key', ['config', 'set', 'aws', 'x'], /aws is a group of settings, not one/],
  ])('%s', async (_name, args, reason) => {
    const result = await run(args);
    expect(result.exitCode).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[0]).toMatch(reason);
    expect(lines.slice(1).every((line) => /^\s+hint: /.test(line))).toBe(true);
    expect(readFileSync(settingsFile, 'utf8')).toBe(ORIGINAL);
    expect(existsSync(`${settingsFile}.bak`)).toBe(false);
  });

  it('a dcp.yaml that does not parse: named with its line, for every command that reads it', async () => {
    const broken = 'dcp:\n  workers: 3\n  aws: [unclosed\n';
    writeFileSync(settingsFile, broken);
    for (const args of [
      ['config', 'set', 'workers', '4'],
      ['config', 'list'],
      ['config', 'get', 'workers'],
      ['config', 'unset', 'workers'],
    ]) {
      const result = await run(args);
      expect(result.exitCode, args.join(' ')).toBe(2);
      expect(result.stderr.split('\n')[0]).toMatch(
        new RegExp(`^error: ${settingsFile.replace(/[.]/g, '\\.')}:\\d+: the YAML does not parse`),
      );
      expect(readFileSync(settingsFile, 'utf8')).toBe(broken);
    }
  });

  it('a bare off in dcp.yaml, which YAML reads as false, gets a hint to quote it', async () => {
    writeFileSync(settingsFile, 'dcp:\n  tls: off\n');
    const result = await run(['config', 'list']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('dcp.tls: must be one of auto, byo, off');
    expect(result.stderr).toContain('hint: quote it in the file ("off"');
  });

  it('a dcp.yaml with a value of the wrong type is named by file and key', async () => {
    writeFileSync(settingsFile, 'dcp:\n  workers: many\n');
    const result = await run(['config', 'list']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(
      `error: ${settingsFile}: dcp.workers: must be a whole number from 1 to 1000`,
    );
  });
});

describe('dcp config set/get/unset', () => {
  it('keeps comments, key order and unrelated keys, and the previous version as .bak', async () => {
    expect((await run(['config', 'set', 'workers', '8'])).exitCode).toBe(0);
    expect((await run(['config', 'set', 'aws.instance_type', 't3.large'])).exitCode).toBe(0);
    const text = readFileSync(settingsFile, 'utf8');
    expect(text).toBe(
      [
        '# my dcp settings',
        'dcp:',
        '  workers: 8 # enough for now',
        '  aws:',
        '    region: eu-west-1',
        '    instance_type: t3.large',
        'other:',
        '  thing: kept',
        '',
      ].join('\n'),
    );
    expect(readFileSync(`${settingsFile}.bak`, 'utf8')).toContain('workers: 8');
    expect(readdirSync(join(home, '.config', 'dask')).sort()).toEqual(['dcp.yaml', 'dcp.yaml.bak']);
  });

  it('an empty or comments-only file becomes a mapping, its comments kept; a linked file is changed where it lives', async () => {
    writeFileSync(settingsFile, '# nothing yet\n');
    expect((await run(['config', 'set', 'workers', '5'])).exitCode).toBe(0);
    expect(readFileSync(settingsFile, 'utf8')).toBe('# nothing yet\n\ndcp:\n  workers: 5\n');
    writeFileSync(settingsFile, '');
    expect((await run(['config', 'set', 'workers', '6'])).exitCode).toBe(0);
    expect(readFileSync(settingsFile, 'utf8')).toBe('dcp:\n  workers: 6\n');

    const dotfiles = tempDir('dcp-dotfiles-');
    writeFileSync(join(dotfiles, 'dcp.yaml'), 'dcp:\n  workers: 2\n');
    rmSync(settingsFile);
    symlinkSync(join(dotfiles, 'dcp.yaml'), settingsFile);
    expect((await run(['config', 'set', 'threads', '2'])).exitCode).toBe(0);
    expect(lstatSync(settingsFile).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dotfiles, 'dcp.yaml'), 'utf8')).toBe('dcp:\n  workers: 2\n  threads: 2\n');
  });

  it('unset with no file writes none; set still reports success when an unrelated variable is broken', async () => {
    const fresh = tempDir('dcp-home-');
    expect((await dcp(['config', 'unset', 'workers'], { home: fresh })).exitCode).toBe(0);
    expect(existsSync(join(fresh, '.config', 'dask', 'dcp.yaml'))).toBe(false);
    const saved = await run(['config', 'set', 'threads', '2'], { env: { DCP_WORKERS: 'abc' } });
    expect(saved.exitCode, saved.stderr).toBe(0);
    expect(readFileSync(settingsFile, 'utf8')).toContain('threads: 2');
  });

  it('export writes only what the user chose, never a default over their own value', async () => {
    const file = join(home, '.config', 'dask', 'cloudprovider.yaml');
    writeFileSync(file, 'cloudprovider:\n  ec2:\n    use_private_ip: true  # our VPN\n');
    expect((await run(['config', 'export', 'cloudprovider', '--provider', 'aws'])).exitCode).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/use_private_ip: true\s+# our VPN/);
    expect(text).toContain('region: eu-west-1');
  });

  it('creates ~/.config/dask when missing, and honours DASK_CONFIG as Dask does', async () => {
    const fresh = tempDir('dcp-home-');
    expect((await dcp(['config', 'set', 'tls', 'off'], { home: fresh })).exitCode).toBe(0);
    expect(readFileSync(join(fresh, '.config', 'dask', 'dcp.yaml'), 'utf8')).toBe('dcp:\n  tls: "off"\n');
    const elsewhere = join(fresh, 'my-dask');
    expect(
      (await dcp(['config', 'set', 'workers', '6'], { home: fresh, env: { DASK_CONFIG: elsewhere } }))
        .exitCode,
    ).toBe(0);
    expect(readFileSync(join(elsewhere, 'dcp.yaml'), 'utf8')).toBe('dcp:\n  workers: 6\n');
  });

  it('get prints the value alone, or JSON with its origin', async () => {
    expect((await run(['config', 'get', 'aws.region'])).stdout).toBe('eu-west-1');
    expect(json((await run(['config', 'get', 'workers', '--json'])).stdout)).toEqual({
      key: 'workers',
      value: 3,
      origin: { source: 'user', file: settingsFile },
    });
    const unsetKey = await run(['config', 'get', 'gcp.zone']);
    expect(unsetKey).toMatchObject({ exitCode: 0, stdout: '' });
    expect(unsetKey.stderr).toContain('gcp.zone is not set');
  });

  it('unset removes a key, and an emptied group with it', async () => {
    expect((await run(['config', 'unset', 'aws.region'])).exitCode).toBe(0);
    expect(readFileSync(settingsFile, 'utf8')).toBe(
      ['# my dcp settings', 'dcp:', '  workers: 3 # enough for now', 'other:', '  thing: kept', ''].join(
        '\n',
      ),
    );
    const again = await run(['config', 'unset', 'aws.region', '--json']);
    expect(json(again.stdout)).toMatchObject({ changed: false });
  });

  it('warns when what was saved is overridden by a DCP_ variable', async () => {
    const result = await run(['config', 'set', 'workers', '4'], { env: { DCP_WORKERS: '9' } });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('saved, but environment DCP_WORKERS overrides it here');
  });
});

describe('dcp config set ingress', () => {
  it('normalises host bits with a warning, keeps me, and appends without duplicates', async () => {
    const first = await run(['config', 'set', 'ingress', '--cidr', '10.1.0.2/16', '--json']);
    expect(first.exitCode).toBe(0);
    expect(first.stderr).toContain(
      'warning: 10.1.0.2/16 has host bits set; stored as the network 10.1.0.0/16',
    );
    expect(json(first.stdout)).toMatchObject({ value: [{ ports: [8786, 8787], cidr: '10.1.0.0/16' }] });
    await run([
      'config',
      'set',
      'ingress',
      '--cidr',
      'me',
      '--cidr',
      'fd00:1::5/64',
      '--ports',
      '8786',
      '--append',
    ]);
    await run(['config', 'set', 'ingress', '--cidr', '10.1.0.0/16', '--append']);
    expect(json((await run(['config', 'get', 'ingress', '--json'])).stdout)).toMatchObject({
      value: [
        { ports: [8786, 8787], cidr: '10.1.0.0/16' },
        { ports: [8786], cidr: 'me' },
        { ports: [8786], cidr: 'fd00:1::/64' },
      ],
    });
    expect(readFileSync(settingsFile, 'utf8')).toContain('- ports: [ 8786, 8787 ]\n      cidr: 10.1.0.0/16');
  });

  it("takes Coiled's JSON list, and the whole internet only when asked by name, with a warning", async () => {
    const coiled = await run([
      'config',
      'set',
      'ingress',
      '[{"ports": [8786], "cidr": "10.1.0.2/16"}, {"ports": [8787], "cidr": "10.32.0.0/16"}]',
    ]);
    expect(coiled.exitCode, coiled.stderr).toBe(0);
    const anywhere = await run([
      'config',
      'set',
      'ingress',
      '--cidr',
      '0.0.0.0/0',
      '--allow-anywhere',
      '--append',
    ]);
    expect(anywhere.exitCode).toBe(0);
    expect(anywhere.stderr).toContain('0.0.0.0/0 opens ports 8786, 8787 to the whole internet');
    expect(
      json<{ value: unknown }>((await run(['config', 'get', 'ingress', '--json'])).stdout).value,
    ).toEqual([
      { ports: [8786], cidr: '10.1.0.0/16' },
      { ports: [8787], cidr: '10.32.0.0/16' },
      { ports: [8786, 8787], cidr: '0.0.0.0/0' },
    ]);
  });
});

describe('dcp config list, path and precedence', () => {
  it('flags > DCP_ variables > project file > user file > defaults, each origin named', async () => {
    const project = tempDir('dcp-project-');
    writeFileSync(join(project, '.dcprc.yaml'), 'workers: 4\naws:\n  instance_type: m5.large\n');
    const result = await run(['config', 'list', '--show-origin', '--json'], {
      cwd: project,
      env: { DCP_AWS_INSTANCE_TYPE: 'c5.xlarge', DCP_TLS: 'off' },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const listed = json<{ settings: Record<string, unknown>; origins: Record<string, unknown> }>(
      result.stdout,
    );
    expect(listed.settings).toEqual({
      provider: 'local',
      workers: 4,
      networking: 'public',
      tls: 'off',
      idle_timeout: '1h',
      runtime: 'docker',
      aws: { region: 'eu-west-1', instance_type: 'c5.xlarge' },
    });
    expect(listed.origins).toEqual({
      provider: { source: 'default' },
      workers: { source: 'project', file: join(project, '.dcprc.yaml') },
      networking: { source: 'default' },
      tls: { source: 'env', variable: 'DCP_TLS' },
      idle_timeout: { source: 'default' },
      runtime: { source: 'default' },
      'aws.region': { source: 'user', file: settingsFile },
      'aws.instance_type': { source: 'env', variable: 'DCP_AWS_INSTANCE_TYPE' },
    });
    const human = await run(['config', 'list', '--show-origin'], { cwd: project });
    expect(human.stdout).toMatch(/^workers = 4\s+\(project file .*\.dcprc\.yaml\)$/m);
    expect(human.stdout).toMatch(/^provider = local\s+\(default\)$/m);
  });

  it('finds package.json#dcp from a subfolder, and refuses a bad project file naming it', async () => {
    const project = tempDir('dcp-project-');
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'x', dcp: { provider: 'gcp', gcp: { zone: 'europe-west1-b' } } }),
    );
    mkdirSync(join(project, 'src'));
    const found = await run(['config', 'get', 'gcp.zone', '--json'], { cwd: join(project, 'src') });
    expect(json(found.stdout)).toEqual({
      key: 'gcp.zone',
      value: 'europe-west1-b',
      origin: { source: 'project', file: join(project, 'package.json') },
    });

    const other = tempDir('dcp-project-');
    writeFileSync(join(other, '.dcprc.yaml'), 'workers: 0\n');
    const bad = await run(['config', 'list'], { cwd: other });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain(`error: ${join(other, '.dcprc.yaml')}: workers: must be at least 1`);
  });

  it('a bad DCP_ variable is a usage error naming it', async () => {
    const result = await run(['config', 'list'], { env: { DCP_WORKERS: 'lots' } });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('error: DCP_WORKERS: "lots" must be a whole number');
  });

  it('path says where everything lives', async () => {
    const result = await run(['config', 'path', '--json']);
    expect(json(result.stdout)).toMatchObject({
      settings: settingsFile,
      cloudprovider: join(home, '.config', 'dask', 'cloudprovider.yaml'),
      dask_config_dir: join(home, '.config', 'dask'),
      project: null,
    });
  });

  it('export needs a cloud: local is refused naming --provider', async () => {
    const result = await run(['config', 'export', 'cloudprovider']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('the configured provider is local');
    expect(result.stderr).toContain('--provider aws|gcp|azure|digitalocean');
  });

  it('the help lists every settings key the schema has', () => {
    for (const key of SETTING_KEYS.keys()) {
      const [group, name] = key.split('.');
      expect(SETTINGS_HELP, key).toMatch(
        name ? new RegExp(`${group}\\.\\s.*\\b${name}\\b`) : new RegExp(`\\b${group}\\b`),
      );
    }
  });
});

describe('the whole internet, in pieces too, needs --allow-anywhere', () => {
  it.each(['0.0.0.0/1', '128.0.0.0/1', '2.0.0.0/7', '::/1', '8000::/1', '2000::/3'])(
    '%s: refused by config set ingress and by up --ingress, allowed by name',
    async (cidr) => {
      const set = await run(['config', 'set', 'ingress', '--cidr', cidr]);
      expect(set.exitCode).toBe(2);
      expect(set.stderr).toMatch(
        new RegExp(`^error: ${cidr.replace(/[.]/g, '\\.')} would open ports 8786, 8787 to`),
      );
      expect(readFileSync(settingsFile, 'utf8')).toBe(ORIGINAL);
      const up = await run(['up', '--provider', 'aws', '--region', 'eu-west-1', '--ingress', `${cidr}:8786`]);
      expect(up.exitCode).toBe(2);
      expect(up.stderr).toContain(`${cidr} would open ports 8786 to`);
      const allowed = await run(['config', 'set', 'ingress', '--cidr', cidr, '--allow-anywhere']);
      expect(allowed.exitCode, allowed.stderr).toBe(0);
      expect(allowed.stderr).toContain(`warning: ${cidr} opens ports 8786, 8787 to`);
    },
  );

  it('a private network as wide as it gets is no reason to ask', async () => {
    for (const cidr of ['10.0.0.0/8', 'fc00::/7']) {
      const set = await run(['config', 'set', 'ingress', '--cidr', cidr]);
      expect(set.exitCode, set.stderr).toBe(0);
    }
  });

  it('a bad port in --ingress is blamed on --ingress, as typed', async () => {
    const up = await run([
      'up',
      '--provider',
      'aws',
      '--region',
      'eu-west-1',
      '--ingress',
      '10.0.0.0/8:99999',
    ]);
    expect(up.exitCode).toBe(2);
    expect(up.stderr.split('\n')[0]).toBe(
      'error: --ingress "10.0.0.0/8:99999": "99999" is not a port from 1 to 65535',
    );
  });
});

describe('dcp config unset', () => {
  it('removes a key dcp does not know that stops every command, and only when it is there', async () => {
    writeFileSync(settingsFile, 'dcp:\n  workers: 3\n  wrokers: 4\n');
    expect((await run(['config', 'list'])).stderr).toContain('unknown setting dcp.wrokers');
    const removed = await run(['config', 'unset', 'wrokers']);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(readFileSync(settingsFile, 'utf8')).toBe('dcp:\n  workers: 3\n');
    expect((await run(['config', 'list'])).exitCode).toBe(0);
    const absent = await run(['config', 'unset', 'wrokers']);
    expect(absent.exitCode).toBe(2);
    expect(absent.stderr).toContain('unknown setting "wrokers"');
    expect(absent.stderr).toContain('did you mean workers?');
  });
});

describe('dcp config export cloudprovider', () => {
  it('says on stderr which settings have no dask-cloudprovider key, ingress and the idle timeout among them', async () => {
    expect((await run(['config', 'set', 'ingress', '--cidr', '10.1.0.0/16'])).exitCode).toBe(0);
    expect((await run(['config', 'set', 'idle_timeout', '30m'])).exitCode).toBe(0);
    const result = await run(['config', 'export', 'cloudprovider', '--provider', 'aws', '--json']);
    expect(result.exitCode, result.stderr).toBe(0);
    const exported = json<{ values: Record<string, unknown>; not_exported: string[] }>(result.stdout);
    expect(exported.values).toEqual({ 'cloudprovider.ec2.region': 'eu-west-1' });
    expect(exported.not_exported.sort()).toEqual(['idle_timeout', 'ingress', 'workers']);
    expect(result.stderr).toMatch(
      /warning: ingress is not exported: .*EC2Cluster opens 8786-8787 to 0\.0\.0\.0\/0/,
    );
    expect(result.stderr).toContain('warning: idle_timeout is not exported');
  });
});

describe('files dcp cannot use', () => {
  it('a dcp.yaml that is a FIFO: exit 2 at once, not a wait', async () => {
    rmSync(settingsFile);
    await execa('mkfifo', [settingsFile]);
    const result = await run(['config', 'list']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`cannot read ${settingsFile}: it is a FIFO, not a regular file`);
  });
});

describeAsRoot('dcp config set into a folder dcp may not write', () => {
  it('exits 2 with the path and the reason, not "another process"', async () => {
    giveToNobody(home);
    chmodSync(join(home, '.config', 'dask'), 0o555);
    // As nobody: root would write anyway.
    const result = await dcpAsNobody(['config', 'set', 'workers', '4'], home);
    expect(result.exitCode, result.stderr).toBe(2);
    expect(result.stderr.split('\n')[0]).toBe(`error: cannot write ${settingsFile}: permission denied`);
    expect(result.stderr).not.toContain('another process');
    expect(readFileSync(settingsFile, 'utf8')).toBe(ORIGINAL);
  });
});
