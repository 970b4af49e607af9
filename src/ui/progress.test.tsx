import { stripVTControlCharacters } from 'node:util';
import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import type { ClusterRecord } from '../cluster/state.js';
import { renderUp } from './cluster.js';
import { createStyle } from './style.js';
import {
  applyEvent,
  applyToView,
  ErrorReport,
  Summary,
  TaskList,
  UpView,
  type Task,
  type ViewState,
} from './progress.js';

const frame = (node: React.ReactElement) => stripVTControlCharacters(render(node).lastFrame() ?? '');

describe('TaskList', () => {
  it('a running step has a spinner and its time so far; a finished one a tick and its time', () => {
    const tasks: Task[] = [
      { step: 'certificates', status: 'done', detail: '/state/tls', startedAt: 0, endedAt: 100 },
      { step: 'scheduler', status: 'running', detail: 'waiting for tls://127.0.0.1:8786', startedAt: 1000 },
    ];
    const lines = frame(<TaskList tasks={tasks} now={3500} />).split('\n');
    expect(lines[0]).toBe('✓ certificates  0.1s  /state/tls');
    expect(lines[1]).toMatch(/^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] scheduler {2}2\.5s {2}waiting for tls:\/\/127\.0\.0\.1:8786$/);
  });

  it('workers join as n/N, from the engine events', () => {
    let tasks: Task[] = [];
    tasks = applyEvent(tasks, { step: 'workers', status: 'start', detail: '0/3' }, 0);
    tasks = applyEvent(tasks, { step: 'workers', status: 'info', detail: '2/3 connected' }, 500);
    expect(frame(<TaskList tasks={tasks} now={800} />)).toMatch(/workers {2}0\.8s {2}2\/3 connected$/);
    tasks = applyEvent(tasks, { step: 'workers', status: 'done', detail: '3/3 connected' }, 1000);
    expect(frame(<TaskList tasks={tasks} now={5000} />)).toBe('✓ workers  1.0s  3/3 connected');
  });

  it('a rollback fails what was still running, and shows itself as it happens', () => {
    let tasks: Task[] = [{ step: 'workers', status: 'running', detail: '1/2 connected', startedAt: 0 }];
    tasks = applyEvent(tasks, { step: 'roll back', status: 'start', detail: 'interrupted (Ctrl-C)' }, 2000);
    const lines = frame(<TaskList tasks={tasks} now={2500} />).split('\n');
    expect(lines[0]).toBe('✗ workers  2.0s  1/2 connected');
    expect(lines[1]).toMatch(/^. roll back {2}0\.5s {2}interrupted \(Ctrl-C\)$/);
  });
});

describe('UpView', () => {
  it('shows finished steps and warnings in the order they happened, then what is still going', () => {
    let state: ViewState = { tasks: [], settled: [] };
    state = applyToView(state, { step: 'create', status: 'start' }, 0);
    state = applyToView(state, { step: 'start worker-1', status: 'done', detail: 'pid 7' }, 10);
    state = applyToView(state, { step: 'create', status: 'done' }, 20);
    state = {
      ...state,
      settled: [...state.settled, { key: 'w', warning: 'TLS is off: traffic is unencrypted' }],
    };
    state = applyToView(state, { step: 'workers', status: 'start', detail: '0/2' }, 30);
    state = applyToView(state, { step: 'workers', status: 'info', detail: '1/2 connected' }, 40);
    expect(state.settled.map((item) => ('task' in item ? item.task.step : item.warning))).toEqual([
      'start worker-1',
      'create',
      'TLS is off: traffic is unencrypted',
    ]);
    expect(frame(<UpView state={state} now={500} />)).toMatch(
      /^✓ start worker-1 {2}0\.0s {2}pid 7\n✓ create {2}0\.0s\n! TLS is off: traffic is unencrypted\n. workers {2}0\.5s {2}1\/2 connected$/,
    );
  });

  it('an error with its details and hint', () => {
    const text = frame(
      <ErrorReport
        error={{
          message: 'the worker-1 process exited during start-up',
          details: '--- worker-1 ---\nboom',
          hint: 'the log lines above say what went wrong',
        }}
      />,
    );
    expect(text).toBe(
      [
        '',
        '✗ the worker-1 process exited during start-up',
        '--- worker-1 ---',
        'boom',
        '  hint: the log lines above say what went wrong',
      ].join('\n'),
    );
  });
});

describe('Summary', () => {
  const record: ClusterRecord = {
    name: 'analytics',
    provider: 'local',
    status: 'ready',
    created_at: '2026-11-22T08:00:00.000Z',
    workers: 2,
    scheduler_address: 'tls://127.0.0.1:8786',
    dashboard_url: 'https://127.0.0.1:8787/status',
    tls: { caFile: '/s/tls/ca.pem', clientCert: '/s/tls/client.pem', clientKey: '/s/tls/client-key.pem' },
    dask_config_file: '/h/.config/dask/dcp-client.yaml',
    details: { bokeh: false },
  };

  it('address, dashboard, TLS files, a snippet that connects, and what to run next', () => {
    const text = frame(<Summary record={record} />);
    expect(text).toContain('✓ analytics is ready (local, 2 workers, TLS)');
    expect(text).toMatch(/scheduler\s+tls:\/\/127\.0\.0\.1:8786/);
    // Behind mutual TLS: the way in is dcp dashboard, and the missing plots are explained.
    expect(text).toMatch(
      /dashboard\s+dcp dashboard analytics \(mutual TLS: https:\/\/127\.0\.0\.1:8787\/status\)/,
    );
    expect(text).toContain("no plots: the cluster's Python lacks Bokeh");
    expect(text).toMatch(/TLS\s+CA \/s\/tls\/ca\.pem/);
    expect(text).toContain('client = Client("tls://127.0.0.1:8786", security=security)');
    expect(text).toContain('tls_client_key="/s/tls/client-key.pem"');
    expect(text).toContain('Next: dcp status analytics · dcp dashboard analytics · dcp down analytics');
  });

  it('says a dashboard without TLS is plain HTTP, open to whoever reaches it', () => {
    const plain = { ...record, tls: null, dashboard_url: 'http://127.0.0.1:8787/status' };
    expect(frame(<Summary record={plain} />)).toMatch(
      /dashboard\s+http:\/\/127\.0\.0\.1:8787\/status \(plain HTTP, open to whoever reaches it: TLS is off\)/,
    );
    expect(renderUp(plain, createStyle(false))).toContain(
      '(plain HTTP, open to whoever reaches it: TLS is off)',
    );
  });

  it('does not call a cluster made with --no-wait ready', () => {
    expect(frame(<Summary record={{ ...record, status: 'running' }} />)).toContain(
      '✓ analytics is starting (not waited for) (local, 2 workers, TLS)',
    );
  });
});
