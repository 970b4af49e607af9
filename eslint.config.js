import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    // The core never talks to the terminal UI: it takes callbacks from commands.
    files: ['src/certs/**', 'src/config/**', 'src/cluster/**', 'src/providers/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['ink', 'ink-*', 'react', '@inquirer/*', '../ui/*', '../commands/*'] },
      ],
    },
  },
);
